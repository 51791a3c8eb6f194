// upicdc dashboard: reads the JSON API, follows /api/v1/events (Server-Sent
// Events) and redraws what a commit changed. No framework, no build step.
(function () {
  "use strict";

  // ---- exact numbers and money -------------------------------------------

  // exactJSON parses JSON with every number kept as its decimal text, so
  // money (500.50) never passes through a float.
  function exactJSON(text) {
    let out = "", start = 0, i = 0;
    const n = text.length;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 34) { // a string: skip it, escapes included
        i++;
        while (i < n) {
          const d = text.charCodeAt(i);
          if (d === 92) i += 2;
          else if (d === 34) { i++; break; }
          else i++;
        }
      } else if (c === 45 || (c >= 48 && c <= 57)) { // a number
        let j = i + 1;
        while (j < n && "0123456789.eE+-".indexOf(text[j]) >= 0) j++;
        out += text.slice(start, i) + '"' + text.slice(i, j) + '"';
        start = i = j;
      } else i++;
    }
    return JSON.parse(out + text.slice(start));
  }

  // groupIndian groups an integer's digits the Indian way: 12,34,567.
  function groupIndian(digits) {
    if (digits.length <= 3) return digits;
    const head = digits.slice(0, -3), tail = digits.slice(-3);
    return head.replace(/\B(?=(\d{2})+$)/g, ",") + "," + tail;
  }

  // money formats an exact decimal string ("-1234567.5", "500", 500 as
  // text) as ₹ with two decimals and Indian digit grouping.
  function money(s) {
    s = String(s).trim();
    let neg = false;
    if (s[0] === "-") { neg = true; s = s.slice(1); } else if (s[0] === "+") s = s.slice(1);
    if (!/^\d+(\.\d*)?$/.test(s)) return "₹?";
    let [int, frac = ""] = s.split(".");
    int = int.replace(/^0+(?=\d)/, "");
    frac = (frac + "00").slice(0, 2); // the API sends at most two decimals (paise)
    if (neg && /^0*$/.test(int + frac)) neg = false;
    return (neg ? "-" : "") + "₹" + groupIndian(int) + "." + frac;
  }

  function count(s) { return groupIndian(String(s)); }

  // ---- time in windows.timezone ------------------------------------------

  const fmtCache = {};
  function formatter(kind) {
    const key = state.zone + kind;
    if (!fmtCache[key]) {
      const opts = kind === "date"
        ? { year: "numeric", month: "short", day: "2-digit" }
        : { year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
      try {
        fmtCache[key] = new Intl.DateTimeFormat("en-IN", Object.assign({ timeZone: state.zone }, opts));
      } catch (e) { // a zone the browser does not know: UTC, and say so
        state.zone = "UTC";
        fmtCache[key] = new Intl.DateTimeFormat("en-IN", Object.assign({ timeZone: "UTC" }, opts));
      }
    }
    return fmtCache[key];
  }
  function fmtTime(t, kind) {
    if (t === null || t === undefined || t === "") return "–";
    const d = typeof t === "number" ? new Date(t) : new Date(t);
    if (isNaN(d)) return String(t);
    return formatter(kind || "time").format(d);
  }
  function fmtAge(seconds) {
    const s = Number(seconds);
    if (!(s > 0)) return "0s";
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + Math.floor(s % 60) + "s";
    return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  }

  // ---- state and API -----------------------------------------------------

  const state = {
    zone: "UTC",
    sort: "net_sales", order: "desc", q: "", offset: 0, limit: 50, total: 0,
    route: { view: "merchants" },
    alerts: null,          // null: unknown; false: no alerts endpoint (404)
    alertRows: [],
    rawHistory: [],
    status: null,
    tableVersions: {},
    prevCells: {},          // merchant → rendered cells (to flash changes)
    lastUpdate: null,       // {eventTime, renderedAt, table, version}: latency of the last live update
    renders: 0,
    charts: {},
  };

  class HTTPError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }

  async function api(path) {
    const resp = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
    const text = await resp.text();
    if (!resp.ok) {
      let msg = resp.status + " " + resp.statusText;
      try { msg = JSON.parse(text).error || msg; } catch (e) { /* not JSON */ }
      throw new HTTPError(resp.status, msg);
    }
    return exactJSON(text);
  }

  const $ = (sel) => document.querySelector(sel);
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function moneyTD(v, cls) {
    const neg = String(v).trim()[0] === "-" && money(v)[0] === "-";
    return `<td class="num ${cls || ""}${neg ? " neg" : ""}">${esc(money(v))}</td>`;
  }

  function showError(where, err) {
    // Shown on the page, not thrown: a failed request is not a script error.
    const el = $("#last-error");
    el.textContent = `${where}: ${err.message}`;
    el.classList.add("bad");
  }

  // ---- pipeline health ---------------------------------------------------

  async function loadStatus() {
    let st;
    try { st = await api("/api/v1/status"); } catch (e) { showError("status", e); return; }
    state.status = st;
    const rows = st.tables.map((t) => `<tr><td>${esc(t.name)}</td><td>v${esc(t.version)}</td></tr>`).join("");
    $("#tables tbody").innerHTML = rows;
    for (const t of st.tables) state.tableVersions[t.name] = Number(t.version);
    const behind = Number(st.stream.versions_behind);
    const lagEl = $("#lag-versions");
    lagEl.textContent = behind === 0 ? "caught up" : `${count(behind)} versions`;
    lagEl.classList.toggle("bad", behind > 0);
    $("#lag-seconds").textContent = `${fmtAge(st.stream.lag_seconds)} behind · ${st.stream.state} · trigger ${st.stream.trigger}`;
    $("#backlog").textContent = `${count(st.inbox.backlog_files)} files`;
    $("#oldest").textContent = Number(st.inbox.backlog_files) > 0 ? `oldest ${fmtAge(st.inbox.oldest_file_age_seconds)}` : "empty";
    const errEl = $("#last-error");
    if (st.last_error) {
      errEl.textContent = `${fmtTime(st.last_error.time)} · ${st.last_error.component}: ${st.last_error.message}`;
      errEl.classList.add("bad");
    } else {
      errEl.textContent = "none";
      errEl.classList.remove("bad");
    }
    await loadRates(st);
  }

  // loadRates reads the raw table's newest commits (each a batch file) to
  // count the files and rows of the last minute.
  async function loadRates(st) {
    const raw = st.tables[0];
    const latest = Number(raw.version);
    if (latest < 1) { state.rawHistory = []; renderRates(); return; }
    try {
      const h = await api(`/api/v1/tables/${encodeURIComponent(raw.name)}/history?from=${Math.max(1, latest - 199)}&limit=200`);
      state.rawHistory = h.commits.map((c) => ({
        at: Date.parse(c.timestamp),
        rows: Number((c.operationMetrics || {}).numSourceRows || 0),
        merge: c.operation === "MERGE",
      }));
    } catch (e) { showError("history", e); }
    renderRates();
  }
  function renderRates() {
    const since = Date.now() - 60000;
    let files = 0, rows = 0;
    for (const c of state.rawHistory) if (c.merge && c.at >= since) { files++; rows += c.rows; }
    $("#rate-files").textContent = `${count(files)} files`;
    $("#rate-rows").textContent = `${count(rows)} rows/min`;
  }

  // ---- alerts (when the daemon has them) ---------------------------------

  function alertList(body) {
    if (Array.isArray(body)) return body;
    for (const k of ["alerts", "firing", "items"]) if (Array.isArray(body[k])) return body[k];
    for (const k in body) if (Array.isArray(body[k])) return body[k];
    return [];
  }
  function alertTime(a) {
    for (const k of ["fired_at", "started_at", "since", "time", "at", "window_start", "updated_at"]) if (a[k]) return Date.parse(a[k]) || 0;
    return 0;
  }
  async function loadAlerts() {
    if (state.alerts === false) return;
    let body;
    try { body = await api("/api/v1/alerts"); } catch (e) {
      if (e.status === 404) { state.alerts = false; $("#alerts").hidden = true; return; }
      showError("alerts", e); return;
    }
    state.alerts = true;
    const list = alertList(body).filter((a) => !a.state || a.state === "firing" || a.firing === true || a.firing === "true");
    list.sort((a, b) => alertTime(b) - alertTime(a));
    state.alertRows = list;
    $("#alerts").hidden = false;
    $("#alerts-count").textContent = count(list.length);
    renderAlertTable($("#alerts-table"), list);
    if (state.route.view === "merchant") renderMerchantAlerts();
  }
  function renderAlertTable(table, list) {
    const cols = [];
    for (const a of list) for (const k in a) if (!cols.includes(k) && typeof a[k] !== "object") cols.push(k);
    table.querySelector("thead").innerHTML = "<tr>" + cols.map((c) => `<th>${esc(c)}</th>`).join("") + "</tr>";
    table.querySelector("tbody").innerHTML = list.length === 0
      ? `<tr><td class="muted" colspan="${Math.max(1, cols.length)}">none firing</td></tr>`
      : list.map((a) => "<tr>" + cols.map((c) => {
        const v = a[c] === undefined || a[c] === null ? "" : a[c];
        if (/(sales|refunds|amount)/.test(c) && /^-?\d+(\.\d+)?$/.test(String(v))) return moneyTD(v);
        if (/(_at|time|since|start|end)$/.test(c) && v) return `<td>${esc(fmtTime(v))}</td>`;
        if (c === "merchant_id" && v) return `<td><a href="#/merchant/${encodeURIComponent(v)}">${esc(v)}</a></td>`;
        return `<td>${esc(v)}</td>`;
      }).join("") + "</tr>").join("");
  }
  function renderMerchantAlerts() {
    const box = $("#merchant-alerts");
    if (!state.alerts) { box.hidden = true; return; }
    const mine = state.alertRows.filter((a) => a.merchant_id === state.route.id);
    box.hidden = false;
    renderAlertTable(box.querySelector("table"), mine);
  }

  // ---- merchants table (paged on the server) -----------------------------

  async function loadMerchants() {
    const p = new URLSearchParams({ sort: state.sort, order: state.order, offset: state.offset, limit: state.limit });
    if (state.q) p.set("q", state.q);
    let page;
    try { page = await api("/api/v1/merchants?" + p); } catch (e) { showError("merchants", e); return; }
    state.total = Number(page.total);
    if (state.offset > 0 && state.offset >= state.total) { // the list shrank under us
      state.offset = Math.max(0, Math.floor((state.total - 1) / state.limit) * state.limit);
      return loadMerchants();
    }
    const tbody = $("#merchants tbody");
    const prev = state.prevCells, next = {};
    const cols = ["net_sales", "total_sales", "total_refunds", "completed_count", "refunded_count", "initiated_count", "failed_count", "last_raw_version"];
    tbody.innerHTML = page.merchants.length === 0
      ? `<tr><td colspan="9" class="muted">no merchant ${state.q ? "matches “" + esc(state.q) + "”" : "yet"}</td></tr>`
      : page.merchants.map((m) => {
        const id = m.merchant_id;
        next[id] = {};
        const cells = cols.map((c) => {
          const v = m[c];
          next[id][c] = v;
          const changed = prev[id] && prev[id][c] !== v ? " flash" : "";
          if (c.endsWith("sales") || c.endsWith("refunds")) return moneyTD(v, c + changed);
          return `<td class="num ${c}${c.endsWith("count") || c === "last_raw_version" ? " wide" : ""}${changed}">${esc(count(v))}</td>`;
        });
        return `<tr data-merchant="${esc(id)}"><td class="merchant_id"><a href="#/merchant/${encodeURIComponent(id)}">${esc(id)}</a></td>${cells.join("")}</tr>`;
      }).join("");
    state.prevCells = next;
    $("#merchants").dataset.version = page.version;
    $("#merchants-version").textContent = `aggregated_upi_transactions v${page.version}`;
    const from = state.total === 0 ? 0 : state.offset + 1, to = Math.min(state.total, state.offset + state.limit);
    $("#range").textContent = `${count(from)}–${count(to)} of ${count(state.total)}`;
    $("#prev").disabled = state.offset === 0;
    $("#next").disabled = state.offset + state.limit >= state.total;
    for (const th of document.querySelectorAll("#merchants th[data-sort]")) {
      th.setAttribute("aria-sort", th.dataset.sort === state.sort ? (state.order === "asc" ? "ascending" : "descending") : "none");
    }
    return Number(page.version);
  }

  // ---- one merchant ------------------------------------------------------

  const sizeNames = { "1h": "Hourly", "1d": "Daily", "1w": "Weekly" };

  async function loadMerchant() {
    const id = state.route.id;
    $("#merchant-title").textContent = id;
    let m, w, tx;
    try {
      [m, w, tx] = await Promise.all([
        api(`/api/v1/merchants/${encodeURIComponent(id)}`),
        api(`/api/v1/merchants/${encodeURIComponent(id)}/windows`),
        api(`/api/v1/merchants/${encodeURIComponent(id)}/transactions?limit=25`),
      ]);
    } catch (e) {
      $("#merchant-totals").innerHTML = `<div class="card"><p class="bad">${esc(e.message)}</p></div>`;
      $("#charts").innerHTML = "";
      $("#transactions tbody").innerHTML = "";
      return;
    }
    if (state.route.id !== id) return; // navigated away meanwhile
    const card = (title, value, cls) => `<div class="card"><h3>${esc(title)}</h3><p class="big ${cls || ""}">${value}</p></div>`;
    $("#merchant-totals").innerHTML =
      card("Net sales", esc(money(m.net_sales)), "net_sales") + card("Sales", esc(money(m.total_sales))) +
      card("Refunds", esc(money(m.total_refunds))) +
      card("Completed · refunded", `${esc(count(m.completed_count))} · ${esc(count(m.refunded_count))}`) +
      card("Initiated · failed", `${esc(count(m.initiated_count))} · ${esc(count(m.failed_count))}`);
    renderCharts(w);
    $("#transactions tbody").innerHTML = tx.transactions.length === 0
      ? `<tr><td colspan="7" class="muted">none in the newest ${count(Number(tx.version) - Number(tx.scanned_from) + 1)} raw versions</td></tr>`
      : tx.transactions.map((t) => `<tr data-version="${esc(t._commit_version)}"><td class="num">v${esc(t._commit_version)}</td>` +
        `<td>${esc(fmtTime(t._commit_timestamp))}</td><td><a href="/api/v1/transactions/${encodeURIComponent(t.transaction_id)}">${esc(t.transaction_id)}</a></td>` +
        `<td>${esc(t.transaction_status)}</td>${moneyTD(t.transaction_amount)}<td class="wide">${esc(t._change_type)}</td>` +
        `<td class="wide">${esc(fmtTime(t.transaction_time))}</td></tr>`).join("");
    $("#transactions-note").textContent = tx.complete ? `raw versions 1–${tx.version} read` :
      `newest raw versions ${tx.scanned_from}–${tx.version} read (the raw table has no merchant index; older ones not shown)`;
    renderMerchantAlerts();
  }

  // renderCharts draws one chart per window size: net sales, sales and
  // refunds over time. The legend shows the exact amounts; only the
  // drawing uses floats.
  function renderCharts(w) {
    const box = $("#charts");
    for (const k in state.charts) state.charts[k].destroy();
    state.charts = {};
    box.innerHTML = "";
    const bySize = {};
    for (const win of w.windows) (bySize[win.window_size] = bySize[win.window_size] || []).push(win);
    const sizes = Object.keys(bySize).sort((a, b) => ["1h", "1d", "1w"].indexOf(a) - ["1h", "1d", "1w"].indexOf(b));
    if (sizes.length === 0) { box.innerHTML = `<p class="muted">No windows yet.</p>`; return; }
    // Lay every box out first, so each chart takes its box's final width.
    const divs = sizes.map((size) => {
      const div = document.createElement("div");
      div.className = "chart";
      div.id = "chart-" + size;
      div.dataset.points = bySize[size].length;
      div.innerHTML = `<h3>${esc(sizeNames[size] || size)} windows (${bySize[size].length})</h3>`;
      box.appendChild(div);
      return div;
    });
    sizes.forEach((size, n) => {
      const rows = bySize[size], div = divs[n];
      const keys = ["net_sales", "total_sales", "total_refunds"];
      const exact = keys.map((k) => rows.map((r) => r[k]));
      const data = [rows.map((r) => Date.parse(r.window_start) / 1000)].concat(exact.map((col) => col.map(Number)));
      const step = { "1h": 3600, "1d": 86400, "1w": 7 * 86400 }[size] || 86400;
      const series = [{ label: "window", value: (u, v) => v === null ? "–" : fmtTime(v * 1000, size === "1h" ? "time" : "date") }]
        .concat(keys.map((k, i) => ({
          label: { net_sales: "Net sales", total_sales: "Sales", total_refunds: "Refunds" }[k],
          stroke: ["#2457c5", "#067647", "#b42318"][i],
          width: 2,
          points: { show: true, size: 8 },
          value: (u, v, si, idx) => idx === null || idx === undefined ? "–" : money(exact[i][idx]),
        })));
      const width = Math.max(260, div.clientWidth - 16);
      const opts = {
        width, height: 220, series,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), state.zone),
        // From the data: uPlot widens a one-point range by far more.
        scales: { x: { time: true, range: () => [Math.min(...data[0]) - step / 2, Math.max(...data[0]) + step / 2] } },
        axes: [{}, { size: 70, values: (u, ticks) => ticks.map(shortMoney) }],
        legend: { live: true },
      };
      // The legend shows the newest window until the cursor points at another.
      const newest = (u) => { if (u.cursor.idx === null || u.cursor.idx === undefined) u.setLegend({ idx: data[0].length - 1 }); };
      opts.hooks = { ready: [newest], setCursor: [newest] };
      state.charts[size] = new uPlot(opts, data, div);
    });
  }
  // shortMoney labels an axis tick (not an amount from the data).
  function shortMoney(v) {
    const a = Math.abs(v);
    if (a >= 1e7) return "₹" + (v / 1e7).toFixed(1) + "Cr";
    if (a >= 1e5) return "₹" + (v / 1e5).toFixed(1) + "L";
    if (a >= 1e3) return "₹" + (v / 1e3).toFixed(1) + "k";
    return "₹" + Math.round(v);
  }

  // ---- routing -----------------------------------------------------------

  function parseRoute() {
    const m = location.hash.match(/^#\/merchant\/(.+)$/);
    return m ? { view: "merchant", id: decodeURIComponent(m[1]) } : { view: "merchants" };
  }
  async function route() {
    state.route = parseRoute();
    const one = state.route.view === "merchant";
    $("#merchant-view").hidden = !one;
    $("#merchants-view").hidden = one;
    if (one) await loadMerchant(); else await loadMerchants();
  }

  // ---- live updates ------------------------------------------------------

  let pending = null, pendingTables = new Set(), pendingEvent = null, refreshing = Promise.resolve();

  function onCommit(ev) {
    pendingTables.add(ev.table);
    if (!pendingEvent || Date.parse(ev.time) < Date.parse(pendingEvent.time)) pendingEvent = ev;
    if (pending) return;
    // Commits come in bursts (a MERGE, then its micro-batch): one redraw.
    pending = setTimeout(() => {
      pending = null;
      const tables = pendingTables, first = pendingEvent;
      pendingTables = new Set(); pendingEvent = null;
      refreshing = refreshing.then(() => refresh(tables, first));
    }, 30);
  }

  async function refresh(tables, ev) {
    const jobs = [loadStatus()];
    const derived = [...tables].some((t) => t !== (state.status && state.status.tables[0].name));
    if (state.route.view === "merchants" && derived) jobs.push(loadMerchants());
    if (state.route.view === "merchant") jobs.push(loadMerchant());
    if (state.alerts !== false && derived) jobs.push(loadAlerts());
    await Promise.all(jobs);
    state.renders++;
    if (ev) state.lastUpdate = { table: ev.table, version: Number(ev.version), eventTime: Date.parse(ev.time), renderedAt: Date.now(), tables: [...tables] };
  }

  async function refreshAll() {
    await Promise.all([loadStatus(), route(), loadAlerts()]);
    state.renders++;
  }

  function connect() {
    const live = $("#live");
    const es = new EventSource("/api/v1/events");
    let hellos = 0;
    es.addEventListener("hello", (m) => {
      live.textContent = "live";
      live.className = "live on";
      const versions = exactJSON(m.data).tables;
      const first = hellos++ === 0;
      refreshing = refreshing.then(() => {
        // The first load ran already; reload only if a commit fell between
        // it and the subscription. After a reconnect (a restart, perhaps
        // of a new binary with alerts), reload everything.
        const stale = Object.keys(versions).some((t) => Number(versions[t]) !== state.tableVersions[t]);
        if (!first) state.alerts = state.alerts === false ? null : state.alerts;
        if (!first || stale) return refreshAll();
      });
    });
    es.addEventListener("commit", (m) => onCommit(exactJSON(m.data)));
    es.onerror = () => {
      // EventSource retries by itself (the server asks for 1s).
      live.textContent = "reconnecting…";
      live.className = "live off";
    };
  }

  // ---- wiring ------------------------------------------------------------

  async function init() {
    try {
      const t = await api("/api/v1/tables");
      for (const table of t.tables) for (const c of table.columns) if (c.name === "window_start" && c.zone) state.zone = c.zone;
    } catch (e) { showError("tables", e); }
    formatter("time");
    $("#zone").textContent = state.zone;

    let typing = null;
    $("#search").addEventListener("input", (e) => {
      clearTimeout(typing);
      typing = setTimeout(() => { state.q = e.target.value.trim(); state.offset = 0; loadMerchants(); }, 120);
    });
    $("#prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); loadMerchants(); });
    $("#next").addEventListener("click", () => { state.offset += state.limit; loadMerchants(); });
    for (const th of document.querySelectorAll("#merchants th[data-sort]")) {
      th.addEventListener("click", () => {
        const c = th.dataset.sort;
        if (state.sort === c) state.order = state.order === "asc" ? "desc" : "asc";
        else { state.sort = c; state.order = c === "merchant_id" ? "asc" : "desc"; }
        state.offset = 0;
        loadMerchants();
      });
    }
    $("#merchants tbody").addEventListener("click", (e) => {
      const tr = e.target.closest("tr[data-merchant]");
      if (tr && !e.target.closest("a")) location.hash = "#/merchant/" + encodeURIComponent(tr.dataset.merchant);
    });
    window.addEventListener("hashchange", () => { refreshing = refreshing.then(route); });
    let resizing = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => {
        for (const k in state.charts) {
          const div = document.getElementById("chart-" + k);
          if (div) state.charts[k].setSize({ width: Math.max(260, div.clientWidth - 16), height: 220 });
        }
      }, 100);
    });
    // Time passes without commits: the last minute's counts age locally,
    // and the health panel's ages (lag, oldest file) are re-read now and
    // then. Data views change only on commits (events).
    setInterval(renderRates, 5000);
    setInterval(() => { if (!document.hidden) loadStatus(); }, 15000);
    refreshing = refreshAll().then(() => { state.firstRenderMs = performance.now(); });
    connect();
  }

  // For the browser test and the curious: the formatting and a reload.
  window.upicdc = { money, exactJSON, groupIndian, state, reload: () => (refreshing = refreshing.then(refreshAll)) };
  init();
})();
