/* How the tote board writes statuses, pools, amounts, prices and times. */

export const STATUS_LABEL = {
  scheduled: "Scheduled",
  open: "Open",
  closed: "Closed",
  resulted: "Resulted",
  final: "Final",
  abandoned: "Abandoned",
};
export const POOL_LABEL = {
  WIN: "Win",
  PLACE: "Place",
  SHOW: "Show",
  EXACTA: "Exacta",
  QUINELLA: "Quinella",
  TRIFECTA: "Trifecta",
};
// The short names tote boards print over the pool totals.
export const POOL_SHORT = { WIN: "WIN", PLACE: "PLC", SHOW: "SHW", EXACTA: "EXA", QUINELLA: "QUI", TRIFECTA: "TRI" };
export const PLACE_NAMES = ["1st", "2nd", "3rd", "4th"];

const centsFmt = new Intl.NumberFormat("en-US", {
  style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2,
});
const wholeFmt = new Intl.NumberFormat("en-US", {
  style: "currency", currency: "USD", minimumFractionDigits: 0, maximumFractionDigits: 0,
});

/** Pool and stake amounts: whole dollars when whole, else with cents. */
export function amount(cents) {
  return cents % 100 === 0 ? wholeFmt.format(cents / 100) : centsFmt.format(cents / 100);
}

/** A price on the board: dollars with cents, no sign (the column says "$2"). */
export function price(cents) {
  return (cents / 100).toFixed(2);
}

export function priceRange(pair) {
  if (!pair) return "—";
  const [lo, hi] = pair;
  return lo === hi ? price(lo) : `${price(lo)}–${price(hi)}`;
}

export function parseTime(text) {
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

export function timeOfDay(ms, seconds = false) {
  const opts = { hour: "2-digit", minute: "2-digit", hour12: false };
  if (seconds) opts.second = "2-digit";
  return new Date(ms).toLocaleTimeString([], opts);
}

/** "4:05" until post time, "at post" once it has passed. */
export function countdown(postMs) {
  const left = Math.round((postMs - Date.now()) / 1000);
  if (left <= 0) return "at post";
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = String(left % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
