/* A finished race's result on its board: the placings, and the dividends once declared. */

import { el } from "./dom.js";
import { amount, PLACE_NAMES, POOL_LABEL, price } from "./format.js";

/** The result section's two parts: the placings and the dividends (or a note that they
 *  are not declared yet, or still loading). */
export function resultParts(race, declared) {
  const names = new Map(race.runners.map((r) => [r.number, r.name]));
  const placings = el("ol", { class: "placings" });
  race.placings.slice(0, 4).forEach((group, i) => {
    const label = group.length > 1 ? `${PLACE_NAMES[i] || `${i + 1}th`} (dead heat)` : PLACE_NAMES[i] || `${i + 1}th`;
    const li = el("li", { class: "placing" }, el("span", { class: "placing-pos", text: label }));
    for (const n of group) {
      li.append(
        el("span", { class: "saddle", "data-n": n, text: String(n) }),
        el("span", { class: "placing-name", text: names.get(n) || `Runner ${n}` }),
      );
    }
    placings.append(li);
  });
  let dividends;
  if (declared) dividends = dividendsTable(declared);
  else if (race.status === "resulted") dividends = el("p", { class: "pending", text: "Dividends not yet declared" });
  else dividends = el("p", { class: "pending", text: "Loading dividends…" });
  return [
    el("div", { class: "result-placings" }, el("h4", { class: "result-title", text: "Result" }), placings),
    el("div", { class: "result-dividends" }, dividends),
  ];
}

function dividendsTable(declared) {
  const bases = new Set(declared.pools.map((p) => p.price_base_cents));
  const oneBase = bases.size === 1 ? [...bases][0] : null;
  const table = el(
    "table",
    { class: "divs" },
    el("caption", { text: oneBase ? `Dividends per ${amount(oneBase)}` : "Dividends" }),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col", text: "Pool" }),
        el("th", { scope: "col", text: "Runners" }),
        el("th", { scope: "col", class: "num", text: "Pays" }),
      ),
    ),
  );
  for (const p of declared.pools) {
    const body = el("tbody", { "data-pool": p.pool });
    const label = POOL_LABEL[p.pool] || p.pool;
    const unit = oneBase ? "" : ` per ${amount(p.price_base_cents)}`;
    const lines = [];
    if (p.refunded) lines.push(["—", "Refunded"]);
    for (const d of p.dividends) {
      // Quinella is unordered ("1/3"), the other exotics are in finishing order.
      const sel = d.selection.join(p.pool === "QUINELLA" ? "/" : "-");
      lines.push([sel, `$${price(d.dividend_cents)}${unit}`]);
    }
    if (!p.refunded && p.dividends.length === 0) {
      lines.push(["—", p.carry_out_cents ? `No winner: ${amount(p.carry_out_cents)} carried over` : "No winner"]);
    }
    lines.forEach(([sel, pays], i) => {
      const tr = el("tr", {});
      if (i === 0) tr.append(el("th", { scope: "rowgroup", rowSpan: lines.length, text: label }));
      tr.append(el("td", { class: "num sel", text: sel }), el("td", { class: "num pays", text: pays }));
      body.append(tr);
    });
    table.append(body);
  }
  return table;
}
