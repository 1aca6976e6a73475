/* oddstream tote board.
 *
 * Polls GET /races for the race list, follows each open race's board over Server-Sent
 * Events, shows results and dividends of finished races, and drives the admin commands.
 *
 * No framework and no build step. Everything that comes from the API reaches the page
 * through textContent / createElement only, never innerHTML: a runner called
 * "<img onerror=…>" is shown as exactly that text.
 */
"use strict";

(() => {
  // ------------------------------------------------------------------ settings

  const POLL_MS = 2000;
  // A race that finishes while we watch keeps its board this long, so the result and
  // dividends get seen before the board makes room for the next race.
  const LINGER_MS = 30_000;
  const RECENT_RESULTS = 4; // finished races listed beside the live ones
  // Browsers allow about six HTTP/1.1 connections per host and every EventSource holds
  // one for good. Cap the streams so polls and admin commands always find a free
  // connection; open races beyond the cap are refreshed by polling instead.
  const MAX_STREAMS = 4;
  const KEY_STORAGE = "oddstream.adminKey";
  const FLASH_MS = 1000;

  const LIVE = new Set(["scheduled", "open", "closed", "resulted"]);
  const FINISHED = new Set(["final", "abandoned"]);
  const STATUS_LABEL = {
    scheduled: "Scheduled",
    open: "Open",
    closed: "Closed",
    resulted: "Resulted",
    final: "Final",
    abandoned: "Abandoned",
  };
  const POOL_LABEL = {
    WIN: "Win",
    PLACE: "Place",
    SHOW: "Show",
    EXACTA: "Exacta",
    QUINELLA: "Quinella",
    TRIFECTA: "Trifecta",
  };
  // The short names tote boards print over the pool totals.
  const POOL_SHORT = { WIN: "WIN", PLACE: "PLC", SHOW: "SHW", EXACTA: "EXA", QUINELLA: "QUI", TRIFECTA: "TRI" };
  const PLACE_NAMES = ["1st", "2nd", "3rd", "4th"];

  // ------------------------------------------------------------------ helpers

  const $ = (id) => document.getElementById(id);

  /** createElement with properties; children may be nodes or strings (text nodes). */
  function el(tag, props = {}, ...children) {
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

  const centsFmt = new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2,
  });
  const wholeFmt = new Intl.NumberFormat("en-US", {
    style: "currency", currency: "USD", minimumFractionDigits: 0, maximumFractionDigits: 0,
  });

  /** Pool and stake amounts: whole dollars when whole, else with cents. */
  function amount(cents) {
    return cents % 100 === 0 ? wholeFmt.format(cents / 100) : centsFmt.format(cents / 100);
  }

  /** A price on the board: dollars with cents, no sign (the column says "$2"). */
  function price(cents) {
    return (cents / 100).toFixed(2);
  }

  function priceRange(pair) {
    if (!pair) return "—";
    const [lo, hi] = pair;
    return lo === hi ? price(lo) : `${price(lo)}–${price(hi)}`;
  }

  function parseTime(text) {
    const ms = Date.parse(text);
    return Number.isNaN(ms) ? null : ms;
  }

  function timeOfDay(ms, seconds = false) {
    const opts = { hour: "2-digit", minute: "2-digit", hour12: false };
    if (seconds) opts.second = "2-digit";
    return new Date(ms).toLocaleTimeString([], opts);
  }

  /** "4:05" until post time, "at post" once it has passed. */
  function countdown(postMs) {
    const left = Math.round((postMs - Date.now()) / 1000);
    if (left <= 0) return "at post";
    const h = Math.floor(left / 3600);
    const m = Math.floor((left % 3600) / 60);
    const s = String(left % 60).padStart(2, "0");
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
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
  function setText(node, text, kind = "change") {
    if (node.textContent === text) return false;
    const first = !node.hasAttribute("data-shown");
    node.textContent = text;
    if (first) node.setAttribute("data-shown", "");
    else if (kind) flash(node, kind);
    return true;
  }

  async function api(method, path, body, { admin = false, timeoutMs = 8000 } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (admin) {
      const key = keyInput.value.trim();
      if (key) headers["X-API-Key"] = key;
    }
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: abort.signal,
        cache: "no-store",
      });
    } catch (err) {
      throw new Error(err.name === "AbortError" ? "the server did not answer in time" : "cannot reach the server");
    } finally {
      clearTimeout(timer);
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const err = new Error(data && data.message ? data.message : `HTTP ${response.status}`);
      err.status = response.status;
      err.code = data && data.error;
      throw err;
    }
    return data;
  }

  const raceName = (race) => race.meeting || race.race_id;

  function postTimeMs(race) {
    return parseTime(race.post_time);
  }

  /** Order: live races by post time (next to jump first), then finished ones. */
  function raceOrder(a, b) {
    const ga = FINISHED.has(a.status) ? 1 : 0;
    const gb = FINISHED.has(b.status) ? 1 : 0;
    if (ga !== gb) return ga - gb;
    const ta = postTimeMs(a) ?? Infinity;
    const tb = postTimeMs(b) ?? Infinity;
    if (ta !== tb) return ga ? tb - ta : ta - tb; // finished: most recent first
    return a.race_id < b.race_id ? -1 : a.race_id > b.race_id ? 1 : 0;
  }

  /** Keep `parent`'s children in `nodes` order, moving only what is out of place (a
   *  moved node loses keyboard focus, so never re-append the whole list). */
  function arrange(parent, nodes) {
    nodes.forEach((node, i) => {
      if (parent.children[i] !== node) parent.insertBefore(node, parent.children[i] || null);
    });
  }

  // ------------------------------------------------------------------ state

  const races = new Map(); // race_id -> latest summary from GET /races
  const tiles = new Map(); // race_id -> Tile
  const panels = new Map(); // race_id -> Panel (a board on screen)
  const finishedAt = new Map(); // race_id -> when we saw it finish (for LINGER_MS)
  let selectedId = readHash();
  let headPosition = 0;
  let loadedOnce = false;
  let panelCount = 0; // for unique element ids

  function readHash() {
    const match = location.hash.match(/^#race=(.+)$/);
    if (!match) return null;
    try {
      return decodeURIComponent(match[1]);
    } catch {
      return null;
    }
  }

  // ------------------------------------------------------------------ race list

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
      this.button.addEventListener("click", () => select(this.id === selectedId ? null : this.id, true));
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
      this.button.setAttribute("aria-pressed", String(this.id === selectedId));
    }

    tick() {
      const post = this.race ? postTimeMs(this.race) : null;
      const counting = post !== null && (this.race.status === "open" || this.race.status === "scheduled");
      this.countdown.hidden = !counting;
      if (counting) this.countdown.textContent = countdown(post);
    }
  }

  function renderRaceList() {
    const all = [...races.values()].sort(raceOrder);
    const live = all.filter((r) => !FINISHED.has(r.status));
    const done = all.filter((r) => FINISHED.has(r.status)).slice(0, RECENT_RESULTS);
    const shown = [...live, ...done];
    const selected = selectedId && races.get(selectedId);
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
    $("races-empty").hidden = !loadedOnce || races.size > 0;
  }

  // ------------------------------------------------------------------ boards

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
      this.titleButton.setAttribute("aria-pressed", String(this.id === selectedId));
      this.node.classList.toggle("selected", this.id === selectedId);
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
      const race = this.race;
      const show = race.status === "resulted" || race.status === "final";
      this.result.hidden = !show;
      if (!show) return;
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
      if (this.dividends) dividends = this.dividendsTable(this.dividends);
      else if (race.status === "resulted") dividends = el("p", { class: "pending", text: "Dividends not yet declared" });
      else dividends = el("p", { class: "pending", text: "Loading dividends…" });
      this.result.replaceChildren(
        el("div", { class: "result-placings" }, el("h4", { class: "result-title", text: "Result" }), placings),
        el("div", { class: "result-dividends" }, dividends),
      );
    }

    dividendsTable(declared) {
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
    const selectedFirst = (a, b) => (b.race_id === selectedId) - (a.race_id === selectedId);
    return [...races.values()]
      .filter(
        (r) =>
          LIVE.has(r.status) ||
          r.race_id === selectedId ||
          (finishedAt.has(r.race_id) && now - finishedAt.get(r.race_id) < LINGER_MS),
      )
      .sort((a, b) => selectedFirst(a, b) || raceOrder(a, b));
  }

  function syncPanels() {
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
    $("boards-empty").hidden = !loadedOnce || nodes.length > 0;
  }

  // ------------------------------------------------------------------ polling

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
      const query = want > headPosition ? `?limit=60&min_position=${want}` : "?limit=60";
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

  function refreshNow(position) {
    wantPosition = Math.max(wantPosition, position || 0);
    poll();
  }

  function applyRaces(data) {
    headPosition = Math.max(headPosition, data.position);
    $("head-position").textContent = String(headPosition);
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
    loadedOnce = true;
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

  function select(id, scroll) {
    selectedId = id;
    const url = id ? `#race=${encodeURIComponent(id)}` : `${location.pathname}${location.search}`;
    history.replaceState(null, "", url);
    renderRaceList();
    syncPanels();
    renderAdmin();
    const panel = id && panels.get(id);
    if (panel && scroll) panel.node.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  // ------------------------------------------------------------------ admin

  const keyInput = $("admin-key");
  const adminButtons = ["btn-open", "btn-close", "btn-result", "btn-dividends"].map($);
  let adminBusy = false;

  function renderAdmin() {
    const race = selectedId && races.get(selectedId);
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
    const race = selectedId && races.get(selectedId);
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
      const answer = await api("POST", `/races/${encodeURIComponent(race.race_id)}/${action}`, body, { admin: true });
      say(`${done}: ${raceName(race)} (position ${answer.position}).`, "ok");
      refreshNow(answer.position);
    } catch (err) {
      say(`${raceName(race)}: ${err.message}`, "error");
    } finally {
      adminBusy = false;
      renderAdmin();
    }
  }

  function initAdmin() {
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

  // ------------------------------------------------------------------ start

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
})();
