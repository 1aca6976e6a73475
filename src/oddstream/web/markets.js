/* oddstream fixed odds: every market's money line, live.
 *
 * The page follows GraphQL's getInstantOdds over WebSocket (graphql-feed.js) with
 * `current: true`: first the record of every market, then each change as the market's
 * new record — created, prices updated, deleted — so no poll is needed. After a
 * reconnection the rows are rebuilt from the records the subscription sends again.
 *
 * No framework and no build step, as the tote board (app.js): ES modules served as they
 * are. This one is the page's entry; the others:
 *   graphql-feed.js  the graphql-transport-ws client
 *   odds-format.js   the book percentage, prices as numbers (the decimal and
 *                    fractional texts are the server's: `moneyline_text`)
 *   dom.js           building nodes, flashing changes (the tote board's)
 *   format.js        times (the tote board's)
 * Everything from the API reaches the page through textContent / createElement only.
 */

import { $, arrange, el, setText } from "./dom.js";
import { parseTime, timeOfDay } from "./format.js";
import { subscribe } from "./graphql-feed.js";
import { bookText, priceValue } from "./odds-format.js";

const QUERY = `subscription Markets {
  getInstantOdds(current: true) {
    id external_id game_id deleted updated_at position
    moneyline { home away draw }
    moneyline_text { home { decimal fractional } away { decimal fractional } draw { decimal fractional } }
  }
}`;
const OUTCOMES = ["home", "draw", "away"];

const rows = new Map(); // external_id -> Row
let headPosition = 0;

class Row {
  constructor(record) {
    this.id = record.external_id;
    this.order = record.id; // the log position of its creation: oldest first
    this.cells = {};
    const tds = OUTCOMES.map((outcome) => {
      const decimal = el("span", { class: "dec", "data-field": "decimal" });
      const fractional = el("span", { class: "frac", "data-field": "fractional" });
      this.cells[outcome] = { decimal, fractional, value: null };
      return el("td", { class: "num price-cell", "data-outcome": outcome }, decimal, fractional);
    });
    this.game = el("span", { class: "name" });
    this.book = el("td", { class: "num book", "data-field": "book" });
    this.updated = el("td", { class: "num when", "data-field": "updated" });
    this.node = el(
      "tr",
      { "data-market": this.id },
      el("th", { scope: "row", class: "runner", title: `market ${this.id}` }, this.game),
      ...tds,
      this.book,
      this.updated,
    );
  }

  update(record) {
    this.game.textContent = record.game_id;
    this.node.dataset.game = record.game_id;
    this.node.dataset.position = String(record.position);
    const line = record.moneyline;
    // shown as the server's formats write them (8/13 exactly; the decimal `line` holds
    // has six places at most), compared and summed from the decimal
    const shown = record.moneyline_text;
    for (const outcome of OUTCOMES) {
      const cell = this.cells[outcome];
      const text = line[outcome];
      if (text === null || text === undefined || !shown[outcome]) {
        setText(cell.decimal, "—", null);
        setText(cell.fractional, "", null);
        continue;
      }
      // A shorter price (money for the outcome) flashes green; a drifting one red.
      const value = priceValue(text);
      let move = "change";
      if (cell.value !== null && value !== null && value !== cell.value) move = value < cell.value ? "firm" : "drift";
      cell.value = value;
      setText(cell.decimal, shown[outcome].decimal, move);
      setText(cell.fractional, shown[outcome].fractional, "tint");
    }
    const prices = OUTCOMES.map((o) => line[o]).filter((p) => p !== null && p !== undefined);
    setText(this.book, bookText(prices), null);
    const at = parseTime(record.updated_at);
    this.updated.textContent = at === null ? record.updated_at : timeOfDay(at, true);
    this.updated.title = record.updated_at;
  }
}

function apply(record) {
  headPosition = Math.max(headPosition, record.position);
  $("head-position").textContent = String(headPosition);
  let row = rows.get(record.external_id);
  if (record.deleted) {
    if (row) {
      row.node.remove();
      rows.delete(record.external_id);
    }
  } else {
    if (!row) {
      row = new Row(record);
      rows.set(record.external_id, row);
    }
    row.update(record);
  }
}

// A change's push and a new market's row are drawn once per frame: a burst of pushes
// costs one layout, not one each.
let pending = [];
let scheduled = false;

function render() {
  scheduled = false;
  for (const record of pending) apply(record);
  pending = [];
  const ordered = [...rows.values()].sort((a, b) => a.order - b.order);
  arrange($("market-rows"), ordered.map((r) => r.node));
  $("market-count").textContent = String(rows.size);
  $("markets-empty").hidden = rows.size > 0;
}

function receive(data) {
  pending.push(data.getInstantOdds);
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(render);
  }
}

function reset() {
  pending = [];
  for (const row of rows.values()) row.node.remove();
  rows.clear();
  render();
}

function setState(state, reason) {
  const conn = $("conn");
  const feed = $("feed");
  const live = state === "live";
  conn.textContent = live ? "Live" : state === "error" ? "Error — retrying" : "Offline — retrying";
  conn.className = `conn ${live ? "conn-ok" : "conn-down"}`;
  conn.title = reason || "";
  feed.dataset.feed = live ? "live" : "connecting";
  feed.textContent = live ? "Live" : "Reconnecting…";
  $("feed-note").textContent = reason || "";
}

function tick() {
  $("clock").textContent = timeOfDay(Date.now(), true);
}

tick();
setInterval(tick, 1000);
subscribe("/api/graphql", QUERY, {}, { onOpen: reset, onData: receive, onState: setState });
