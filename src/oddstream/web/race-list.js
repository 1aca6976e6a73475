/* The race list: one tile per live race and a few finished ones, selecting a race. */

import { select } from "./app.js";
import { $, arrange, el, setText } from "./dom.js";
import { amount, countdown, STATUS_LABEL, timeOfDay } from "./format.js";
import { FINISHED, postTimeMs, raceName, raceOrder, races, view } from "./state.js";

const RECENT_RESULTS = 4; // finished races listed beside the live ones

export const tiles = new Map(); // race_id -> Tile

class Tile {
  constructor(race) {
    this.id = race.race_id;
    this.badge = el("span", { class: "badge" });
    this.time = el("span", { class: "tile-time num" });
    this.countdown = el("span", { class: "countdown num" });
    this.name = el("span", { class: "tile-name" });
    this.venue = el("span", { class: "tile-venue" });
    this.pool = el("span", { class: "tile-pool num", title: "All pools, gross" });
    this.bets = el("span", { class: "tile-bets num" });
    this.result = el("span", { class: "tile-result num" });
    this.button = el(
      "button",
      { type: "button", class: "tile", "data-race-id": this.id, "aria-pressed": "false" },
      el("span", { class: "tile-row" }, this.badge, el("span", { class: "tile-when" }, this.time, this.countdown)),
      this.name,
      this.venue,
      el("span", { class: "tile-row" }, this.pool, this.bets),
      this.result,
    );
    this.button.addEventListener("click", () => select(this.id === view.selectedId ? null : this.id, true));
    this.node = el("li", {}, this.button);
  }

  update(race) {
    this.race = race;
    this.button.dataset.status = race.status;
    this.badge.dataset.status = race.status;
    this.badge.textContent = STATUS_LABEL[race.status] || race.status;
    this.name.textContent = raceName(race);
    const live = race.runners.filter((r) => !r.scratched).length;
    this.venue.textContent = `${race.venue} · ${live} runners`;
    const post = postTimeMs(race);
    this.time.textContent = post === null ? race.post_time : timeOfDay(post);
    this.tick();
    const total = race.pools.reduce((sum, p) => sum + p.gross_cents, 0);
    setText(this.pool, amount(total));
    this.bets.textContent = `${race.bets} ${race.bets === 1 ? "bet" : "bets"}`;
    // The first three placings, dead heats joined by "=": "3 · 1=7 · 5".
    const placed = race.placings.slice(0, 3).map((g) => g.join("="));
    this.result.hidden = placed.length === 0;
    this.result.textContent = placed.length ? `Result ${placed.join(" · ")}` : "";
    this.button.setAttribute("aria-pressed", String(this.id === view.selectedId));
  }

  tick() {
    const post = this.race ? postTimeMs(this.race) : null;
    const counting = post !== null && (this.race.status === "open" || this.race.status === "scheduled");
    this.countdown.hidden = !counting;
    if (counting) this.countdown.textContent = countdown(post);
  }
}

export function renderRaceList() {
  const all = [...races.values()].sort(raceOrder);
  const live = all.filter((r) => !FINISHED.has(r.status));
  const done = all.filter((r) => FINISHED.has(r.status)).slice(0, RECENT_RESULTS);
  const shown = [...live, ...done];
  const selected = view.selectedId && races.get(view.selectedId);
  if (selected && !shown.includes(selected)) shown.push(selected);

  const keep = new Set(shown.map((r) => r.race_id));
  for (const [id, tile] of tiles) {
    if (!keep.has(id)) {
      tile.node.remove();
      tiles.delete(id);
    }
  }
  const nodes = shown.map((race) => {
    let tile = tiles.get(race.race_id);
    if (!tile) {
      tile = new Tile(race);
      tiles.set(race.race_id, tile);
    }
    tile.update(race);
    return tile.node;
  });
  arrange($("race-list"), nodes);
  $("races-empty").hidden = !view.loadedOnce || races.size > 0;
}
