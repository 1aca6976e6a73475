/* The boards: one per race worth watching, each with its pools, its runners' odds and
 * prices (live over Server-Sent Events, or polled), and the result once there is one. */

import { api } from "./api.js";
import { select } from "./app.js";
import { $, arrange, el, setText } from "./dom.js";
import { amount, countdown, POOL_LABEL, POOL_SHORT, price, priceRange, STATUS_LABEL, timeOfDay } from "./format.js";
import { resultParts } from "./result.js";
import { finishedAt, LIVE, postTimeMs, raceName, raceOrder, races, view } from "./state.js";

// A race that finishes while we watch keeps its board this long, so the result and
// dividends get seen before the board makes room for the next race.
const LINGER_MS = 30_000;
// Browsers allow about six HTTP/1.1 connections per host and every EventSource holds
// one for good. Cap the streams so polls and admin commands always find a free
// connection; open races beyond the cap are refreshed by polling instead.
const MAX_STREAMS = 4;

export const panels = new Map(); // race_id -> Panel (a board on screen)
let panelCount = 0; // for unique element ids

class Panel {
  constructor(race) {
    this.id = race.race_id;
    this.position = -1; // of the board shown
    this.stream = null;
    this.polled = false; // open, but beyond MAX_STREAMS: refreshed by polling
    this.fetchedStatus = null; // status the last fetched (not streamed) board had
    this.fetching = false;
    this.dividends = null;
    this.loadingDividends = false;
    this.rows = new Map(); // runner number -> row parts
    this.runnerKey = "";
    this.poolKey = "";
    this.prevOdds = new Map();

    const titleId = `board-title-${++panelCount}`;
    this.titleButton = el("button", { type: "button", class: "board-select", "aria-pressed": "false" });
    this.titleButton.addEventListener("click", () => select(this.id, false));
    this.badge = el("span", { class: "badge" });
    this.post = el("span", { class: "board-post num" });
    this.countdown = el("span", { class: "countdown num" });
    this.feed = el("span", { class: "feed", "data-feed": "off" });
    this.venue = el("p", { class: "board-venue" });
    this.pools = el("dl", { class: "pools" });
    this.banner = el("p", { class: "banner", hidden: true });
    this.tbody = el("tbody");
    this.caption = el("caption", { class: "sr-only" });
    this.unitHeads = [];
    const unitHead = (label) => {
      const unit = el("span", { class: "unit", text: "$2" });
      this.unitHeads.push(unit);
      return el("th", { scope: "col", class: "num" }, label, " ", unit);
    };
    this.table = el(
      "table",
      { class: "odds" },
      this.caption,
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", { scope: "col", class: "col-runner", text: "Runner" }),
          el("th", { scope: "col", class: "num col-stakes", text: "Win pool" }),
          el("th", { scope: "col", class: "num col-odds", text: "Odds" }),
          unitHead("Win"),
          unitHead("Place"),
          unitHead("Show"),
        ),
      ),
      this.tbody,
    );
    // Focusable, so a keyboard can scroll a board that is wider than a narrow screen.
    this.tableWrap = el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": titleId }, this.table);
    this.result = el("section", { class: "result", hidden: true });
    this.positionText = el("span", { class: "board-pos num", title: "Event log position this board includes" });
    this.note = el("span", { class: "board-note" });

    this.node = el(
      "article",
      { class: "board", "data-race-id": this.id, "aria-labelledby": titleId },
      el(
        "header",
        { class: "board-head" },
        el("h3", { class: "board-title", id: titleId }, this.titleButton),
        this.badge,
        el("span", { class: "board-when" }, this.post, this.countdown),
        this.feed,
      ),
      this.venue,
      this.pools,
      this.banner,
      this.tableWrap,
      this.result,
      el("footer", { class: "board-foot" }, this.note, this.positionText),
    );
    this.update(race);
  }

  update(race) {
    const resultKey = `${race.status}|${JSON.stringify(race.placings)}`;
    const changed = resultKey !== this.resultKey;
    this.resultKey = resultKey;
    this.race = race;
    this.titleButton.textContent = raceName(race);
    this.titleButton.setAttribute("aria-pressed", String(this.id === view.selectedId));
    this.node.classList.toggle("selected", this.id === view.selectedId);
    this.venue.textContent = `${race.venue} · race ${race.race_id}`;
    const post = postTimeMs(race);
    this.post.textContent = post === null ? `Post ${race.post_time}` : `Post ${timeOfDay(post)}`;
    // A board streamed after this poll was answered may know a newer status already.
    if ((race.statusPosition ?? 0) >= this.position) this.setStatus(race.status);
    this.tick();
    if (this.position < 0 && race.pools.length) this.renderPools(race.pools);
    if (changed) this.renderResult();
  }

  setStatus(status) {
    this.status = status;
    this.node.dataset.status = status;
    this.badge.dataset.status = status;
    this.badge.textContent = STATUS_LABEL[status] || status;
    const banner = {
      scheduled: "Betting not open yet",
      closed: "Betting closed — awaiting the result",
      abandoned: "Race abandoned — all bets refunded",
    }[status];
    this.banner.hidden = !banner;
    this.banner.textContent = banner || "";
    // Once there is a result, the result and dividends replace the odds.
    this.tableWrap.hidden = status === "resulted" || status === "final" || status === "abandoned";
  }

  tick() {
    const post = postTimeMs(this.race);
    const counting = post !== null && (this.status === "open" || this.status === "scheduled");
    this.countdown.hidden = !counting;
    if (counting) this.countdown.textContent = countdown(post);
  }

  setFeed(state) {
    this.feed.dataset.feed = state;
    this.feed.textContent = { live: "Live", connecting: "Reconnecting…", poll: "Polling", off: "" }[state];
    this.feed.title = {
      live: "Streaming live odds",
      connecting: "Live odds feed interrupted; reconnecting",
      poll: "Refreshed every few seconds",
      off: "",
    }[state];
  }

  // ---- data in

  applyBoard(position, board) {
    if (position < this.position) return; // an older answer overtaken by the stream
    this.position = position;
    setText(this.positionText, `pos ${position}`, null);
    if (board.status && board.status !== this.status && position >= (this.race.statusPosition || 0)) {
      // The stream saw the status change before the next poll did.
      this.setStatus(board.status);
    }
    const base = board.price_base_cents || 100;
    const unit = amount(base);
    for (const head of this.unitHeads) head.textContent = unit;
    this.note.textContent = `Approximate dividends per ${unit}`;
    this.caption.textContent = `Odds board for ${raceName(this.race)}; prices in dollars per ${unit}`;
    this.renderPools(board.pools);
    this.renderRunners(board.runners, board.pools, base);
  }

  renderPools(pools) {
    const key = pools.map((p) => p.pool).join(",");
    if (key !== this.poolKey) {
      this.poolKey = key;
      this.poolCells = new Map();
      this.pools.replaceChildren();
      const add = (name, short, label) => {
        const dd = el("dd", { class: "num" });
        const dt = el("dt", {}, el("abbr", { title: `${label} pool`, text: short }));
        this.pools.append(el("div", { class: "pool", "data-pool": name }, dt, dd));
        this.poolCells.set(name, dd);
      };
      add("TOTAL", "Total", "All pools");
      for (const p of pools) add(p.pool, POOL_SHORT[p.pool] || p.pool, POOL_LABEL[p.pool] || p.pool);
    }
    let total = 0;
    for (const p of pools) {
      total += p.gross_cents;
      const carry = p.carry_in_cents ? ` +${amount(p.carry_in_cents)}` : "";
      setText(this.poolCells.get(p.pool), amount(p.gross_cents) + carry);
    }
    setText(this.poolCells.get("TOTAL"), amount(total));
  }

  renderRunners(runners, pools, base) {
    const key = runners.map((r) => r.number).join(",");
    if (key !== this.runnerKey) {
      this.runnerKey = key;
      this.rows.clear();
      this.tbody.replaceChildren(...runners.map((r) => this.buildRow(r)));
    }
    const winPool = pools.find((p) => p.pool === "WIN");
    const winGross = winPool ? winPool.gross_cents : 0;
    // The favourite: the shortest odds among runners still in the race.
    let fav = null;
    for (const r of runners) {
      if (!r.scratched && r.odds_to_one !== null && (fav === null || r.odds_to_one < fav.odds_to_one)) fav = r;
    }
    for (const r of runners) {
      const row = this.rows.get(r.number);
      if (row.scratched !== r.scratched) this.setScratched(row, r);
      row.node.classList.toggle("fav", fav !== null && fav.number === r.number);
      row.fav.hidden = !(fav !== null && fav.number === r.number);
      setText(row.stakes, amount(r.win_stakes_cents));
      const share = winGross > 0 ? (100 * r.win_stakes_cents) / winGross : 0;
      row.shareFill.style.width = `${share.toFixed(1)}%`;
      row.stakesCell.title = `${share.toFixed(1)}% of the win pool`;
      // Odds shortening is money coming for the runner: flash green; drifting: red.
      const before = this.prevOdds.get(r.number);
      let move = "change";
      if (before != null && r.odds_to_one != null) move = r.odds_to_one < before ? "firm" : "drift";
      this.prevOdds.set(r.number, r.odds_to_one);
      setText(row.odds, r.scratched ? "SCR" : r.ladder || "—", move);
      // win_dividend_cents is per $1; shown per the price base like place and show.
      const win = r.win_dividend_cents === null ? "—" : price(Math.round((r.win_dividend_cents * base) / 100));
      const tint = { change: "tint", firm: "tintFirm", drift: "tintDrift" }[move];
      setText(row.win, r.scratched ? "—" : win, tint);
      setText(row.place, r.scratched ? "—" : priceRange(r.place_pays), "tint");
      setText(row.show, r.scratched ? "—" : priceRange(r.show_pays), "tint");
    }
  }

  buildRow(runner) {
    const row = {
      name: el("span", { class: "name" }),
      fav: el("abbr", { class: "fav-tag", title: "favourite", text: "FAV", hidden: true }),
      stakes: el("span", { class: "val", "data-field": "win_stakes" }),
      shareFill: el("span", { class: "share-fill" }),
      odds: el("td", { class: "num odds-cell", "data-field": "ladder" }),
      win: el("td", { class: "num price", "data-field": "win_dividend" }),
      place: el("td", { class: "num range", "data-field": "place_pays" }),
      show: el("td", { class: "num range", "data-field": "show_pays" }),
      scratched: null,
    };
    // The number and name together are the row's header: what a screen reader announces
    // with each price, and the column that stays put when a narrow board scrolls sideways.
    row.nameCell = el(
      "th",
      { scope: "row", class: "runner" },
      el("span", { class: "saddle", "data-n": runner.number, text: String(runner.number) }),
      " ",
      row.name,
      " ",
      row.fav,
    );
    row.stakesCell = el(
      "td",
      { class: "num stakes" },
      row.stakes,
      el("span", { class: "share", "aria-hidden": "true" }, row.shareFill),
    );
    row.node = el(
      "tr",
      { "data-runner": runner.number },
      row.nameCell,
      row.stakesCell,
      row.odds,
      row.win,
      row.place,
      row.show,
    );
    this.rows.set(runner.number, row);
    return row.node;
  }

  setScratched(row, runner) {
    row.scratched = runner.scratched;
    row.node.classList.toggle("scratched", runner.scratched);
    // <s>: the name stays readable, marked as no longer running; screen readers get words.
    row.name.replaceChildren(
      runner.scratched ? el("s", { text: runner.name }) : runner.name,
      runner.scratched ? el("span", { class: "sr-only", text: " (scratched)" }) : "",
    );
  }

  renderResult() {
    const show = this.race.status === "resulted" || this.race.status === "final";
    this.result.hidden = !show;
    if (!show) return;
    this.result.replaceChildren(...resultParts(this.race, this.dividends));
  }

  // ---- data fetching

  openStream() {
    if (this.stream) return;
    this.polled = false;
    const stream = new EventSource(`/races/${encodeURIComponent(this.id)}/odds/stream`);
    this.stream = stream;
    this.setFeed("connecting");
    stream.addEventListener("open", () => this.setFeed("live"));
    stream.addEventListener("board", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.setFeed("live");
      this.applyBoard(message.position, message.board);
    });
    // EventSource reconnects by itself (sending Last-Event-ID) unless the server
    // refused the stream; then drop it and let the next poll decide again.
    stream.addEventListener("error", () => {
      if (stream.readyState === EventSource.CLOSED) {
        if (this.stream === stream) this.stream = null;
        this.setFeed("off");
      } else {
        this.setFeed("connecting");
      }
    });
  }

  closeStream() {
    if (this.stream) this.stream.close();
    this.stream = null;
    this.setFeed(this.polled ? "poll" : "off");
  }

  async fetchBoard() {
    if (this.fetching) return;
    this.fetching = true;
    const status = this.race.status;
    try {
      const data = await api("GET", `/races/${encodeURIComponent(this.id)}/odds`);
      this.fetchedStatus = status;
      this.applyBoard(data.position, data.board);
    } catch {
      // the next poll tries again
    } finally {
      this.fetching = false;
    }
  }

  async fetchDividends() {
    if (this.dividends || this.loadingDividends) return;
    this.loadingDividends = true;
    try {
      this.dividends = await api("GET", `/races/${encodeURIComponent(this.id)}/dividends`);
      this.renderResult();
    } catch {
      // 404 until declared: the next poll tries again
    } finally {
      this.loadingDividends = false;
    }
  }

  destroy() {
    this.closeStream();
    this.node.remove();
  }
}

/** Races that get a board: live ones, ones that just finished, and the selected one,
 *  which comes first (the operator is working on it), the rest in race order. */
function boardRaces() {
  const now = Date.now();
  const selectedFirst = (a, b) => (b.race_id === view.selectedId) - (a.race_id === view.selectedId);
  return [...races.values()]
    .filter(
      (r) =>
        LIVE.has(r.status) ||
        r.race_id === view.selectedId ||
        (finishedAt.has(r.race_id) && now - finishedAt.get(r.race_id) < LINGER_MS),
    )
    .sort((a, b) => selectedFirst(a, b) || raceOrder(a, b));
}

export function syncPanels() {
  const wanted = boardRaces();
  const keep = new Set(wanted.map((r) => r.race_id));
  for (const [id, panel] of panels) {
    if (!keep.has(id)) {
      panel.destroy();
      panels.delete(id);
    }
  }
  // Streams go to the selected race first, then to the next races to jump (the order
  // of `wanted`).
  const open = wanted.filter((r) => r.status === "open");
  const streamed = new Set(open.slice(0, MAX_STREAMS).map((r) => r.race_id));

  const nodes = wanted.map((race) => {
    let panel = panels.get(race.race_id);
    if (!panel) {
      panel = new Panel(race);
      panels.set(race.race_id, panel);
    } else {
      panel.update(race);
    }
    if (streamed.has(race.race_id)) {
      panel.openStream();
    } else {
      panel.polled = race.status === "open";
      panel.closeStream();
      // One fetch per status for races off the stream; every poll for open ones.
      if (panel.polled || panel.fetchedStatus !== race.status) panel.fetchBoard();
    }
    if (race.status === "final") panel.fetchDividends();
    return panel.node;
  });
  arrange($("board-grid"), nodes);
  $("boards-empty").hidden = !view.loadedOnce || nodes.length > 0;
}
