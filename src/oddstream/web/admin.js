/* The race control panel: the admin key, and the commands to the selected race (open,
 * close, result, dividends). */

import { api } from "./api.js";
import { refreshNow } from "./app.js";
import { $ } from "./dom.js";
import { STATUS_LABEL } from "./format.js";
import { raceName, races, view } from "./state.js";

const KEY_STORAGE = "oddstream.adminKey";

const keyInput = $("admin-key");
const adminButtons = ["btn-open", "btn-close", "btn-result", "btn-dividends"].map($);
let adminBusy = false;

export function renderAdmin() {
  const race = view.selectedId && races.get(view.selectedId);
  $("admin-race").textContent = race ? `${raceName(race)} (${STATUS_LABEL[race.status] || race.status})` : "none — pick a race";
  for (const button of adminButtons) button.disabled = adminBusy || !race;
}

function say(text, kind) {
  const msg = $("admin-msg");
  msg.textContent = text;
  msg.dataset.kind = kind;
}

/** "3,1,5" → [[3],[1],[5]]; "3=1,5" (dead heat) → [[3,1],[5]]. */
function parseOrder(text) {
  const groups = text.split(/[\s,;/-]+/).filter(Boolean);
  if (!groups.length) throw new Error("enter the finishing order, e.g. 3,1,5");
  const seen = new Set();
  return groups.map((group) =>
    group.split("=").map((part) => {
      if (!/^\d{1,2}$/.test(part)) throw new Error(`"${part}" is not a runner number`);
      const n = Number(part);
      if (seen.has(n)) throw new Error(`runner ${n} is listed twice`);
      seen.add(n);
      return n;
    }),
  );
}

async function command(action, body) {
  const race = view.selectedId && races.get(view.selectedId);
  if (!race || adminBusy) return;
  const done = {
    open: "Betting opened",
    close: "Betting closed",
    result: "Result declared",
    dividends: "Dividends declared",
  }[action];
  adminBusy = true;
  renderAdmin();
  say(`Sending to ${raceName(race)}…`, "busy");
  try {
    const answer = await api("POST", `/races/${encodeURIComponent(race.race_id)}/${action}`, body, { key: keyInput.value.trim() });
    say(`${done}: ${raceName(race)} (position ${answer.position}).`, "ok");
    refreshNow(answer.position);
  } catch (err) {
    say(`${raceName(race)}: ${err.message}`, "error");
  } finally {
    adminBusy = false;
    renderAdmin();
  }
}

export function initAdmin() {
  try {
    keyInput.value = sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    // storage disabled: the key just is not remembered
  }
  keyInput.addEventListener("input", () => {
    try {
      if (keyInput.value) sessionStorage.setItem(KEY_STORAGE, keyInput.value);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // ignore
    }
  });
  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => command(button.dataset.action));
  }
  $("result-form").addEventListener("submit", (event) => {
    event.preventDefault();
    let placings;
    try {
      placings = parseOrder($("finish-order").value);
    } catch (err) {
      say(err.message, "error");
      return;
    }
    command("result", { placings });
  });
  renderAdmin();
}
