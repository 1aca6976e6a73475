/* oddstream tote board.
 *
 * Polls GET /races for the race list, follows each open race's board over Server-Sent
 * Events, shows results and dividends of finished races, and drives the admin commands.
 *
 * No framework and no build step: ES modules served as they are. This one is the page's
 * entry; it polls and starts the page. The others, each imported by the modules that
 * use it:
 *   state.js      the races known, the selection, the log position read up to
 *   api.js        the HTTP API client
 *   race-list.js  the race list's tiles
 *   board.js      the boards: odds, pools, live over SSE or polled
 *   result.js     a finished race's placings and dividends
 *   admin.js      the race control panel
 *   format.js     labels, amounts, prices, times
 *   dom.js        building nodes, flashing changes
 * race-list.js, board.js and admin.js import select() and refreshNow() back from here:
 * the cycle is harmless, as nothing calls them before this module has run.
 *
 * Everything that comes from the API reaches the page through textContent / createElement
 * only, never innerHTML: a runner called "<img onerror=…>" is shown as exactly that text.
 */

import { initAdmin, renderAdmin } from "./admin.js";
import { api } from "./api.js";
import { panels, syncPanels } from "./board.js";
import { $ } from "./dom.js";
import { timeOfDay } from "./format.js";
import { renderRaceList, tiles } from "./race-list.js";
import { FINISHED, finishedAt, races, readHash, view } from "./state.js";

const POLL_MS = 2000;

let pollTimer = null;
let polling = false;
let pollAgain = false;
let wantPosition = 0; // after a command: read at least up to its position

async function poll() {
  if (polling) {
    pollAgain = true;
    return;
  }
  polling = true;
  clearTimeout(pollTimer);
  const want = wantPosition;
  wantPosition = 0;
  try {
    // the latest races are all the board shows (live ones plus a few finished)
    const query = want > view.headPosition ? `?limit=60&min_position=${want}` : "?limit=60";
    applyRaces(await api("GET", `/races${query}`));
    setConnection(true);
  } catch (err) {
    setConnection(false, err.message);
  } finally {
    polling = false;
    pollTimer = setTimeout(poll, pollAgain ? 0 : POLL_MS);
    pollAgain = false;
  }
}

export function refreshNow(position) {
  wantPosition = Math.max(wantPosition, position || 0);
  poll();
}

function applyRaces(data) {
  view.headPosition = Math.max(view.headPosition, data.position);
  $("head-position").textContent = String(view.headPosition);
  const seen = new Set();
  for (const race of data.races) {
    seen.add(race.race_id);
    const before = races.get(race.race_id);
    if (before && !FINISHED.has(before.status) && FINISHED.has(race.status)) {
      finishedAt.set(race.race_id, Date.now());
    }
    race.statusPosition = data.position;
    races.set(race.race_id, race);
  }
  for (const id of [...races.keys()]) if (!seen.has(id)) races.delete(id);
  view.loadedOnce = true;
  renderRaceList();
  syncPanels();
  renderAdmin();
}

function setConnection(ok, reason) {
  const conn = $("conn");
  const text = ok ? "Live" : "Offline — retrying";
  if (conn.textContent !== text) conn.textContent = text;
  conn.className = `conn ${ok ? "conn-ok" : "conn-down"}`;
  conn.title = ok ? "" : reason || "";
}

export function select(id, scroll) {
  view.selectedId = id;
  const url = id ? `#race=${encodeURIComponent(id)}` : `${location.pathname}${location.search}`;
  history.replaceState(null, "", url);
  renderRaceList();
  syncPanels();
  renderAdmin();
  const panel = id && panels.get(id);
  if (panel && scroll) panel.node.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

function tick() {
  $("clock").textContent = timeOfDay(Date.now(), true);
  for (const tile of tiles.values()) tile.tick();
  for (const panel of panels.values()) panel.tick();
}

window.addEventListener("hashchange", () => select(readHash(), true));
initAdmin();
tick();
setInterval(tick, 1000);
poll();
