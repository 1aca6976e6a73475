/* DOM helpers for the tote board: building nodes, and the flash that marks a change.
 *
 * Everything that comes from the API reaches the page through textContent /
 * createElement only, never innerHTML.
 */

const FLASH_MS = 1000;

export const $ = (id) => document.getElementById(id);

/** createElement with properties; children may be nodes or strings (text nodes). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key in node && !key.includes("-")) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

// A value that changes flashes. Stakes, pool totals and ladder odds get a background
// flash: amber for a change, green when odds shorten (money coming for the runner), red
// when they drift. Prices move on every bet into the pool, for every runner, so they
// only tint their text: a board where everything blinks tells the eye nothing.
// The Web Animations API restarts a flash on each change without forcing a layout,
// which matters at ten boards a second.
// Text turns white while the flash is bright so it stays readable on the flash colour.
const FLASH = {
  change: [{ backgroundColor: "rgba(255, 198, 41, 0.38)", color: "#fff" }, { backgroundColor: "rgba(255, 198, 41, 0)" }],
  firm: [{ backgroundColor: "rgba(47, 224, 122, 0.38)", color: "#fff" }, { backgroundColor: "rgba(47, 224, 122, 0)" }],
  drift: [{ backgroundColor: "rgba(255, 97, 97, 0.38)", color: "#fff" }, { backgroundColor: "rgba(255, 97, 97, 0)" }],
  tint: [{ color: "#ffffff" }, {}],
  tintFirm: [{ color: "#2fe07a" }, {}],
  tintDrift: [{ color: "#ff6161" }, {}],
};

function flash(node, kind = "change") {
  if (typeof node.animate === "function") {
    node.animate(FLASH[kind] || FLASH.change, { duration: FLASH_MS, easing: "ease-out" });
  }
}

/** Set a node's text; flash it when it changed (but not when first filled in). */
export function setText(node, text, kind = "change") {
  if (node.textContent === text) return false;
  const first = !node.hasAttribute("data-shown");
  node.textContent = text;
  if (first) node.setAttribute("data-shown", "");
  else if (kind) flash(node, kind);
  return true;
}

/** Keep `parent`'s children in `nodes` order, moving only what is out of place (a
 *  moved node loses keyboard focus, so never re-append the whole list). */
export function arrange(parent, nodes) {
  nodes.forEach((node, i) => {
    if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] || null);
  });
}
