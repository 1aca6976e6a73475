/* What the tote board knows: the races from the last poll, which one is selected, how
 * far into the log it has read; and the rules for ordering races. Shared by the race
 * list, the boards and the admin panel. */

import { parseTime } from "./format.js";

export const LIVE = new Set(["scheduled", "open", "closed", "resulted"]);
export const FINISHED = new Set(["final", "abandoned"]);

export const races = new Map(); // race_id -> latest summary from GET /races
export const finishedAt = new Map(); // race_id -> when we saw it finish (board.js: LINGER_MS)
/** The page's scalar state (in one object: importers cannot assign a module's `let`). */
export const view = {
  selectedId: readHash(),
  headPosition: 0,
  loadedOnce: false,
};

export function readHash() {
  const match = location.hash.match(/^#race=(.+)$/);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null;
  }
}

export const raceName = (race) => race.meeting || race.race_id;

export function postTimeMs(race) {
  return parseTime(race.post_time);
}

/** Order: live races by post time (next to jump first), then finished ones. */
export function raceOrder(a, b) {
  const ga = FINISHED.has(a.status) ? 1 : 0;
  const gb = FINISHED.has(b.status) ? 1 : 0;
  if (ga !== gb) return ga - gb;
  const ta = postTimeMs(a) ?? Infinity;
  const tb = postTimeMs(b) ?? Infinity;
  if (ta !== tb) return ga ? tb - ta : ta - tb; // finished: most recent first
  return a.race_id < b.race_id ? -1 : a.race_id > b.race_id ? 1 : 0;
}
