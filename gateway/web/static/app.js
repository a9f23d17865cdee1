// nassav web page: the library, an add box, the live queue and source health.
// Plain browser JavaScript, no build step, no third-party code. Every URL is relative to
// the page, so the page works behind a reverse proxy that serves it under a sub-path.
"use strict";

(() => {
  const STAGES = ["resolve", "scrape", "cover", "download"];
  const TOKEN_KEY = "nassav.token";
  const REPLAY_MS = 30 * 60 * 1000;   // on first connect, show what happened in the last half hour
  const RECENT_MAX = 8;
  const PAGE_SIZE = 48;
  const QUIET_MS = 50_000;            // the server pings every 20 s: silence this long means a dead link
  // Characters a WebSocket subprotocol may hold (RFC 7230 token); anything else goes as ?token=.
  const SUBPROTOCOL_SAFE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

  const i18n = window.nassavI18n; // t(key, english, vars) and the language's number formats
  const $ = (sel, root = document) => root.querySelector(sel);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  // -- token and API ----------------------------------------------------------------------

  let token = localStorage.getItem(TOKEN_KEY) || "";
  let tokenAsk = null;       // one dialog for every request that hit a 401 at the same time
  let tokenDeclined = false; // asked once and the user said no: do not nag

  function askToken(refused) {
    if (tokenAsk) return tokenAsk;
    if (tokenDeclined && !refused) return Promise.resolve(null);
    const dialog = $("#token-dialog");
    $("#token-error").hidden = !refused;
    $("#token-input").value = "";
    tokenAsk = new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        const value = $("#token-input").value.trim();
        tokenAsk = null;
        if (dialog.returnValue === "ok" && value) {
          token = value;
          localStorage.setItem(TOKEN_KEY, token);
          $("#forget-token").hidden = false;
          resolve(token);
        } else {
          tokenDeclined = true;
          resolve(null);
        }
      }, { once: true });
      dialog.showModal();
    });
    return tokenAsk;
  }

  // fetch() with the token; answers {status, body} (body is the parsed envelope or null).
  async function api(path, { method = "GET", json } = {}) {
    for (let attempt = 0; attempt < 4; attempt++) {
      const sent = token;
      const headers = {};
      if (sent) headers.Authorization = "Bearer " + sent;
      if (json !== undefined) headers["Content-Type"] = "application/json";
      let res;
      try {
        res = await fetch(path, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
      } catch (e) {
        return { status: 0, body: { message: t("token.unreachable", "the server cannot be reached") } };
      }
      // A 403 for an AVID on the blocklist is an answer, not a refused token.
      let blocked = false;
      if (res.status === 403 && sent) {
        try { const b = await res.clone().json(); blocked = Boolean(b && b.data && b.data.status === "blocked"); } catch (e) { /* not JSON */ }
      }
      if (res.status === 401 || (res.status === 403 && sent && !blocked)) {
        // Another request may have been given a new token meanwhile: just retry with it.
        const given = token !== sent ? token : await askToken(Boolean(sent));
        if (!given) return { status: res.status, body: { message: t("token.needed", "an API token is needed") } };
        continue;
      }
      let body = null;
      try { body = await res.json(); } catch (e) { /* not JSON: a proxy page, an empty body */ }
      return { status: res.status, body };
    }
    return { status: 403, body: { message: t("token.refused", "the API token was refused") } };
  }

  // <img> cannot send headers: the token rides in the query string (the API accepts ?token=).
  function withToken(url) {
    return token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;
  }

  function toast(message, kind = "error") {
    const node = el("div", "toast " + kind, message);
    $("#toasts").append(node);
    setTimeout(() => node.remove(), 6000);
  }

  // -- jobs (the live queue) --------------------------------------------------------------

  const jobs = new Map();     // task_id -> job state
  const jobViews = new Map(); // task_id -> its <li>
  let renderQueued = false;

  function job(id, avid) {
    let j = jobs.get(id);
    if (!j) {
      j = { id, avid: avid || "", kind: "download", status: "queued", stage: "queued", percent: 0,
            speed: "", eta: "", segments: "", message: "", reasons: [], warnings: [], updated: Date.now() };
      jobs.set(id, j);
    }
    if (avid) j.avid = avid;
    j.updated = Date.now();
    return j;
  }

  function fromSnapshot(t, status) {
    const j = job(t.task_id, t.avid);
    j.status = t.status || status;
    j.stage = t.stage || j.stage;
    if (t.kind) j.kind = t.kind;
    j.percent = Number(t.progress || j.percent || 0);
    j.speed = t.speed || j.speed;
    j.eta = t.eta || j.eta;
    if (t.message) j.message = t.message;
  }

  function apply(m) {
    const d = m.data || {};
    const id = d.task_id;
    switch (m.type) {
      case "queue_status":
        (d.active_tasks || []).forEach((t) => fromSnapshot(t, "running"));
        (d.pending_tasks || []).forEach((t) => fromSnapshot(t, "queued"));
        break;
      case "queued": {
        if (!id) break;
        const j = job(id, d.avid);
        Object.assign(j, { status: "queued", stage: "queued", kind: d.kind || j.kind, percent: 0,
                           message: "", reasons: [], warnings: [] });
        break;
      }
      case "task_started":
      case "stage_started": {
        if (!id) break;
        const j = job(id, d.avid);
        if (isDone(j)) break;
        j.status = "running";
        if (d.stage) j.stage = d.stage;
        j.message = d.message || "";
        break;
      }
      case "stage_finished":
        if (id) {
          const j = job(id, d.avid);
          if (!isDone(j)) j.status = "running";
        }
        if (d.stage === "scrape" || d.stage === "cover") refreshLibrarySoon();
        if (d.stage === "resolve") refreshSourcesSoon();
        break;
      case "progress_update": {
        if (!id) break;
        const j = job(id, d.avid);
        if (isDone(j)) break;
        // The speed in the page's language when the event carries the number.
        const speed = d.speed_bytes_per_s !== undefined ? i18n.bytes(Number(d.speed_bytes_per_s), true) : d.speed;
        Object.assign(j, { status: "running", stage: "download", percent: Number(d.percent) || 0,
                           speed: speed || "", eta: d.eta || "", message: "" });
        j.segments = d.segments_total
          ? t("queue.segments", "{done}/{total} segments", { done: d.segments_done, total: d.segments_total }) : "";
        break;
      }
      case "task_completed": {
        if (!id) break;
        const j = job(id, d.avid);
        Object.assign(j, { status: "completed", percent: j.kind === "download" ? 100 : j.percent,
                           message: d.message || t("queue.done", "done"), finished: Date.now() });
        refreshLibrarySoon();
        break;
      }
      case "task_failed": {
        if (!id) break;
        const j = job(id, d.avid);
        Object.assign(j, { status: d.status === "cancelled" ? "cancelled" : "failed",
                           message: d.message || t("queue.failed", "failed"), reasons: d.reasons || [], finished: Date.now() });
        if (d.stage) j.stage = d.stage;
        refreshSourcesSoon();
        break;
      }
      case "warning":
        if (id && d.message) {
          const j = job(id, d.avid);
          if (!j.warnings.includes(d.message)) j.warnings.push(d.message);
        }
        break;
      default:
        return; // ping, pong, error: nothing to show
    }
    scheduleRender();
  }

  const isDone = (j) => j.status === "completed" || j.status === "failed" || j.status === "cancelled";

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    // requestAnimationFrame pauses in hidden tabs; the timer keeps state and page in step anyway.
    const run = () => { if (renderQueued) { renderQueued = false; renderJobs(); } };
    requestAnimationFrame(run);
    setTimeout(run, 250);
  }

  function jobView(j) {
    let v = jobViews.get(j.id);
    if (v) return v;
    v = el("li", "job");
    v.dataset.taskId = j.id;
    const head = el("div", "job-head");
    head.append(el("span", "avid"), el("span", "stage"), el("span", "spacer"));
    const action = el("button", "icon");
    action.type = "button";
    action.addEventListener("click", () => onJobAction(j.id));
    head.append(action);
    const steps = el("div", "steps");
    for (let i = 0; i < STAGES.length; i++) steps.append(el("span"));
    const bar = el("div", "bar");
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    bar.append(el("div"));
    const stats = el("div", "job-stats");
    stats.append(el("span", "pct"), el("span", "rate"), el("span", "eta"));
    v.append(head, steps, bar, stats, el("div", "message"), el("ul", "reasons"), el("div", "warnings"));
    jobViews.set(j.id, v);
    return v;
  }

  function stageName(stage) {
    switch (stage) {
      case "queued": return t("stage.queued", "queued");
      case "resolve": return t("stage.resolve", "resolve");
      case "scrape": return t("stage.scrape", "scrape");
      case "cover": return t("stage.cover", "cover");
      case "download": return t("stage.download", "download");
      case "download-wait": return t("stage.download_wait", "download wait");
      case "import": return t("stage.import", "import");
      default: return String(stage || "").replace(/-/g, " "); // a stage this page does not know yet
    }
  }

  function stageLabel(j) {
    if (j.status === "queued") return t("queue.waiting_worker", "waiting for a worker");
    if (j.stage === "download-wait") return t("queue.waiting_slot", "waiting for a download slot");
    if (j.status === "completed" && j.kind === "upgrade") return t("queue.edition_checked", "edition checked");
    if (j.status === "completed") return j.kind === "download" ? t("queue.downloaded", "downloaded") : t("queue.added", "added");
    if (j.status === "cancelled") return t("queue.cancelled", "cancelled");
    if (j.status === "failed") return t("queue.failed_at", "failed at {stage}", { stage: stageName(j.stage) });
    return stageName(j.stage);
  }

  function updateJobView(j) {
    const v = jobView(j);
    v.dataset.avid = j.avid;
    v.className = "job " + j.status;
    $(".avid", v).textContent = j.avid;
    $(".stage", v).textContent = stageLabel(j);
    const action = $(".icon", v);
    action.textContent = isDone(j) ? (j.status === "completed" ? "×" : "↻") : "×";
    action.title = isDone(j) ? (j.status === "completed" ? t("queue.dismiss", "dismiss") : t("queue.retry", "try again"))
      : t("queue.cancel", "cancel");
    const stageIx = j.stage === "download-wait" ? 3 : STAGES.indexOf(j.stage);
    const stepSpans = $(".steps", v).children;
    const last = j.kind === "download" || j.kind === "upgrade" ? STAGES.length : 3;
    $(".steps", v).hidden = isDone(j);
    for (let i = 0; i < stepSpans.length; i++) {
      const s = stepSpans[i];
      s.hidden = i >= last;
      s.className = j.status === "completed" || i < stageIx ? "done" : (i === stageIx && j.status === "running" ? "now" : "");
    }
    const bar = $(".bar", v);
    const determinate = j.stage === "download" || j.status === "completed";
    const pct = j.status === "completed" ? 100 : Math.max(0, Math.min(100, j.percent || 0));
    bar.classList.toggle("indeterminate", j.status === "running" && !determinate);
    bar.hidden = isDone(j) && j.status !== "completed";
    bar.firstChild.style.width = (determinate ? pct : 0) + "%";
    bar.setAttribute("aria-valuenow", String(determinate ? pct : 0));
    bar.setAttribute("aria-label", t("queue.progress_label", "{avid} progress", { avid: j.avid }));
    $(".pct", v).textContent = determinate ? i18n.percent(pct) : "";
    $(".rate", v).textContent = j.status === "running" && j.speed ? j.speed : (j.status === "running" ? j.segments : "");
    $(".eta", v).textContent = j.status === "running" && j.eta ? t("queue.eta", "ETA {eta}", { eta: j.eta }) : "";
    const msg = $(".message", v);
    // Several reasons (one per source) are listed below; the joined message would repeat them.
    const many = j.status === "failed" && j.reasons.length > 1;
    msg.textContent = !isDone(j) || j.status === "completed" ? ""
      : many ? (j.reasons.every((r) => /not found/.test(r)) ? t("queue.no_source", "No source has this title:")
        : t("queue.all_failed", "Every source failed:"))
      : j.message;
    const reasons = $(".reasons", v);
    reasons.replaceChildren(...(j.status === "failed" && j.reasons.length > 1 ? j.reasons : []).map((r) => el("li", "", r)));
    $(".warnings", v).textContent = j.warnings.length ? "⚠ " + j.warnings.join(" · ") : "";
    return v;
  }

  function renderJobs() {
    const all = [...jobs.values()];
    const live = all.filter((j) => !isDone(j))
      .sort((a, b) => (a.status === "running" ? 0 : 1) - (b.status === "running" ? 0 : 1) || a.id.localeCompare(b.id));
    const done = all.filter(isDone).sort((a, b) => (b.finished || 0) - (a.finished || 0));
    for (const j of done.slice(RECENT_MAX)) { jobs.delete(j.id); jobViews.delete(j.id); }
    const recent = done.slice(0, RECENT_MAX);
    $("#jobs").replaceChildren(...live.map(updateJobView));
    $("#recent").replaceChildren(...recent.map(updateJobView));
    $("#jobs-empty").hidden = live.length > 0;
    $("#recent-wrap").hidden = recent.length === 0;
    const running = live.filter((j) => j.status === "running").length;
    $("#queue-count").textContent = live.length
      ? t("queue.count", "{running} running · {waiting} waiting", { running, waiting: live.length - running }) : "";
    document.title = running ? `(${i18n.number(running)}) nassav` : "nassav";
  }

  async function onJobAction(id) {
    const j = jobs.get(id);
    if (!j) return;
    if (j.status === "completed") { jobs.delete(id); jobViews.delete(id); scheduleRender(); return; }
    if (isDone(j)) { jobs.delete(id); jobViews.delete(id); await submit([j.avid], j.kind); return; }
    const { status, body } = await api(`api/downloads/${encodeURIComponent(j.avid)}`, { method: "DELETE" });
    if (status >= 300) toast((body && body.message) || t("queue.cancel_failed", "could not cancel {avid} (HTTP {status})", { avid: j.avid, status: String(status) }));
  }

  // -- the event stream -------------------------------------------------------------------

  let ws = null;
  let lastId = "";
  const eventListeners = []; // the detail view (detail.js) follows the same connection
  let backoffMs = 1000;
  let heardAt = 0;

  let liveText = null; // the last setLive(), so a language switch can say it again
  function setLive(on, text) {
    liveText = () => setLive(on, text);
    const p = $("#live");
    $("b", p).removeAttribute("data-i18n"); // from here on this script says what the pill shows
    p.className = "pill " + (on ? "live-on" : "live-off");
    $("b", p).textContent = text ? text() : (on ? t("live.on", "live") : t("live.reconnecting", "reconnecting"));
  }

  function connect() {
    const url = new URL("ws/tasks/", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    // A fresh page asks for the recent past too (stream ids are times), so finished and
    // failed jobs show up; a reconnect asks for exactly what it missed.
    url.searchParams.set("last_id", lastId || `${Date.now() - REPLAY_MS}-0`);
    let protocols;
    if (token && SUBPROTOCOL_SAFE.test(token)) protocols = ["bearer", token];
    else if (token) url.searchParams.set("token", token);
    let opened = false;
    const sock = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
    ws = sock;
    sock.onopen = () => { opened = true; heardAt = Date.now(); backoffMs = 1000; setLive(true); };
    sock.onmessage = (e) => {
      heardAt = Date.now();
      let m;
      try { m = JSON.parse(e.data); } catch (err) { return; }
      if (m.id) lastId = m.id;
      apply(m);
      for (const fn of eventListeners) fn(m);
    };
    sock.onclose = async (e) => {
      if (ws !== sock) return;
      ws = null;
      setLive(false);
      if (!opened) {
        // A refused handshake looks like any network error from here: ask the API why.
        const { status } = await api("api/tasks/queue/status");
        if (status === 401 || status === 403) { setLive(false, () => t("live.sign_in", "sign-in needed")); return; }
      }
      const wait = e.code === 1013 ? 0 : backoffMs; // 1013: we were too slow; resume at once
      backoffMs = Math.min(backoffMs * 2, 15000);
      setTimeout(connect, wait);
    };
  }

  setInterval(() => {
    if (ws && ws.readyState === WebSocket.OPEN && Date.now() - heardAt > QUIET_MS) ws.close();
  }, 5000);

  // -- library ----------------------------------------------------------------------------

  const lib = { search: "", status: "all", items: [], total: 0, page: 1, seq: 0 };
  const cards = new Map(); // avid -> card element (kept, so a refresh does not reload covers)

  async function loadLibrary({ more = false } = {}) {
    const seq = ++lib.seq;
    const page = more ? lib.page + 1 : 1;
    // A refresh re-reads everything shown so far in one request, so "show more" survives it.
    const size = more ? PAGE_SIZE : Math.min(100, Math.max(PAGE_SIZE, lib.items.length));
    const q = new URLSearchParams({ page: String(page), page_size: String(size),
                                    sort_by: "metadata_create_time", order: "desc", status: lib.status });
    if (lib.search) q.set("search", lib.search);
    const { status, body } = await api("api/resources/?" + q);
    if (seq !== lib.seq) return; // a newer request (another keystroke) answers instead
    const empty = $("#library-empty");
    if (status !== 200 || !body) {
      empty.hidden = false;
      empty.textContent = status === 404 ? t("library.no_listing", "This server has no library listing.")
        : t("library.load_failed", "The library could not be loaded ({reason}).",
            { reason: (body && body.message) || "HTTP " + status });
      return;
    }
    const items = body.data || [];
    lib.items = more ? lib.items.concat(items) : items;
    lib.page = more ? page : Math.max(1, Math.ceil(lib.items.length / PAGE_SIZE));
    lib.total = (body.pagination && body.pagination.total) || lib.items.length;
    renderLibrary();
  }

  function coverUrl(item) {
    return withToken(`api/resource/cover?avid=${encodeURIComponent(item.avid)}&size=medium`);
  }

  function editionBadge(edition) {
    if (edition === "C") return t("library.edition_c", "CN subs");
    if (edition === "UC") return t("library.edition_uc", "Uncensored · subs");
    if (edition === "U") return t("library.edition_u", "Uncensored");
    return "";
  }

  function card(item) {
    let c = cards.get(item.avid);
    if (!c) {
      c = el("article", "card");
      c.dataset.avid = item.avid;
      const cover = el("div", "cover");
      cover.append(el("div", "placeholder", item.avid));
      c.append(cover, el("div", "meta"));
      $(".meta", c).append(el("div", "avid", item.avid), el("div", "title"));
      // The whole card opens the detail view (detail.js), as a link: it can be opened in a
      // new tab, and the address it leads to survives a reload.
      const open = el("a", "open");
      open.href = "#/" + encodeURIComponent(item.avid);
      open.setAttribute("aria-label", t("detail.open", "Open {avid}", { avid: item.avid }));
      c.append(open);
      cards.set(item.avid, c);
    }
    const cover = $(".cover", c);
    let img = $("img", cover);
    if (item.has_cover && !img) {
      img = el("img");
      img.alt = item.avid;
      img.loading = "lazy";
      img.decoding = "async";
      img.addEventListener("load", () => { img.classList.add("loaded"); $(".placeholder", cover).hidden = true; });
      img.addEventListener("error", () => img.remove());
      img.src = coverUrl(item);
      cover.prepend(img);
    }
    let badge = $(".badge", cover);
    if (!badge) { badge = el("span", "badge"); cover.append(badge); }
    badge.className = "badge" + (item.has_video ? " video" : "");
    badge.textContent = item.has_video ? t("library.badge_video", "▶ video") : t("library.badge_metadata", "metadata");
    // The edition the library holds (GET /api/resources' edition); the regular release shows none.
    let ed = $(".badge.edition", cover);
    const edText = editionBadge(item.edition);
    if (edText && !ed) { ed = el("span", "badge edition"); cover.append(ed); }
    if (ed) {
      ed.hidden = !edText;
      ed.textContent = edText;
      ed.dataset.edition = item.edition || "";
    }
    const title = item.title || item.translated_title || item.source_title || item.original_title || "";
    $(".title", c).textContent = title;
    c.title = [item.avid, title, item.release_date].filter(Boolean).join(" · ");
    return c;
  }

  function renderLibrary() {
    const grid = $("#library-grid");
    // Re-inserting the cards drops the focus: keep it on the card link it was on.
    const focused = grid.contains(document.activeElement) ? document.activeElement : null;
    grid.replaceChildren(...lib.items.map(card));
    if (focused && focused.isConnected && document.activeElement !== focused) focused.focus({ preventScroll: true });
    $("#library-count").textContent = lib.total ? i18n.number(lib.total) : "";
    const empty = $("#library-empty");
    empty.hidden = lib.items.length > 0;
    empty.textContent = lib.search ? t("library.no_match", "Nothing matches “{query}”.", { query: lib.search })
      : t("library.empty", "Your library is empty: add an AVID above.");
    $("#library-more").hidden = lib.items.length >= lib.total;
  }

  let libTimer = 0;
  function refreshLibrarySoon(delayMs = 400) {
    clearTimeout(libTimer);
    libTimer = setTimeout(() => loadLibrary(), delayMs);
  }

  // -- sources and health -----------------------------------------------------------------

  async function loadSources() {
    const { status, body } = await api("api/source/list");
    const list = $("#sources");
    if (status !== 200 || !body || !Array.isArray(body.data)) {
      list.replaceChildren(el("li", "empty", status === 404 ? t("sources.not_reported", "Not reported by this server.")
        : t("sources.unavailable", "Unavailable.")));
      return;
    }
    const now = Date.now() / 1000;
    list.replaceChildren(...body.data.map((s) => {
      const state = !s.enabled ? "disabled" : (s.health || s.state || "unknown");
      const li = el("li", state);
      li.dataset.source = s.name;
      const name = el("span", "name", s.name);
      const detail = [s.last_outcome, s.last_detail].filter(Boolean).join(": ");
      if (detail) name.append(el("span", "detail", detail));
      let text = { ok: t("sources.healthy", "healthy"), failing: t("sources.failing", "failing ×{count}", { count: s.failures || 1 }),
                   unknown: t("sources.unused", "not used yet"), disabled: t("sources.off", "off") }[state] || state;
      if (state === "backoff") {
        text = s.retry_at ? t("sources.paused_retry", "paused · retry {when}", { when: i18n.relative(Math.max(0, s.retry_at - now)) })
          : t("sources.paused", "paused");
      }
      li.append(el("span", "dot"), name, el("span", "state", text));
      li.title = t("sources.weight", "weight {weight}", { weight: s.weight }) +
        (s.last_at ? t("sources.last_used", " · last used {when}", { when: i18n.relative(Math.min(0, s.last_at - now)) }) : "");
      return li;
    }));
  }

  let srcTimer = 0;
  function refreshSourcesSoon() {
    clearTimeout(srcTimer);
    srcTimer = setTimeout(loadSources, 1000);
  }

  async function loadHealth() {
    const pill = $("#health");
    let res;
    try { res = await fetch("health"); } catch (e) { pill.textContent = t("health.unreachable", "server unreachable"); pill.className = "pill live-off"; return; }
    let body = null;
    try { body = await res.json(); } catch (e) { /* keep null */ }
    const d = (body && body.data) || {};
    const w = d.workers || {};
    const parts = [];
    if (d.redis && d.redis !== "ok") parts.push(t("health.redis_down", "Redis down"));
    const workers = (w.metadata || 0) + (w.download || 0);
    parts.push(!workers ? t("health.no_workers", "no workers")
      : i18n.plural(workers) === "one" ? t("health.workers_one", "{count} worker", { count: workers })
      : t("health.workers_other", "{count} workers", { count: workers }));
    if (d.disk && d.disk.free_bytes !== undefined) parts.push(t("health.free", "{size} free", { size: i18n.bytes(d.disk.free_bytes) }));
    // Why downloads wait (download.min_free_gb, download.hours): one part per reason; the hours
    // name the zone they are read in (download.timezone, or the server's own).
    const waits = (d.downloads && d.downloads.reasons) || [];
    for (const r of waits) {
      parts.push(r.reason === "hours"
        ? t("health.wait_hours", "downloads wait: quiet hours until {until} ({zone})",
            { until: r.until, zone: r.timezone || "" })
        : t("health.wait_disk", "downloads wait: {free} free, needs {need}",
            { free: i18n.bytes(r.free_bytes), need: i18n.bytes(r.min_free_bytes) }));
    }
    pill.textContent = parts.join(" · ");
    pill.title = t("health.workers_title", "metadata workers: {metadata}, download workers: {download}",
                   { metadata: w.metadata || 0, download: w.download || 0 }) +
      (d.disk && d.disk.path ? "\n" + t("health.data_title", "data: {path}", { path: d.disk.path }) : "");
    pill.className = "pill" + (res.ok && workers && !waits.length ? "" : " live-off");
  }

  // -- adding -----------------------------------------------------------------------------

  function parseAvids(text) {
    const seen = new Set();
    return text.split(/[\s,;]+/).map((t) => t.trim()).filter((t) => t && !seen.has(t.toUpperCase()) && seen.add(t.toUpperCase()));
  }

  function chip(avid, code, message) {
    const kind = code >= 200 && code < 300 ? "ok" : code === 409 ? "warn" : "bad";
    const c = el("li", "chip " + kind);
    c.append(el("b", "", avid), document.createTextNode(
      kind === "ok" ? t("add.queued", "queued") : code === 409 ? message.replace(/^\S+\s/, "") : message));
    c.title = message;
    return c;
  }

  async function submitOne(avid, mode) {
    const r = mode === "metadata"
      ? await api("api/resource", { method: "POST", json: { avid } })
      : mode === "upgrade" ? await api(`api/resource/${encodeURIComponent(avid)}/upgrade`, { method: "POST" })
      : await api(`api/downloads/${encodeURIComponent(avid)}`, { method: "POST" });
    return { avid, code: r.status, message: (r.body && r.body.message) || `HTTP ${r.status}`, data: r.body && r.body.data };
  }

  async function submit(avids, mode) {
    if (!avids.length) return [];
    let results = null;
    if (mode === "download" && avids.length > 1) {
      const r = await api("api/downloads/batch_submit", { method: "POST", json: { avids } });
      if (r.status === 202 && r.body && r.body.data && Array.isArray(r.body.data.results)) results = r.body.data.results;
      else if (r.status !== 404 && r.status !== 405) {
        toast((r.body && r.body.message) || t("add.failed", "could not add (HTTP {status})", { status: String(r.status) }));
        return [];
      }
    }
    if (!results) results = await Promise.all(avids.map((a) => submitOne(a, mode)));
    for (const r of results) {
      const d = r.data || {};
      if (r.code === 202 && d.job_id) {
        const j = job(d.job_id, d.avid || r.avid);
        if (!isDone(j) && j.status === "queued") j.kind = d.kind || mode;
      }
    }
    scheduleRender();
    return results;
  }

  async function onAdd(e) {
    e.preventDefault();
    const input = $("#add-input");
    const avids = parseAvids(input.value);
    if (!avids.length) { input.focus(); return; }
    const button = $("#add-button");
    button.disabled = true;
    try {
      const results = await submit(avids, $("#add-mode").value);
      const list = $("#add-results");
      list.replaceChildren(...results.map((r) => chip(r.data && r.data.avid || r.avid, r.code, r.message)));
      // Keep only what was refused as malformed, so it can be fixed and sent again.
      const bad = results.filter((r) => r.code === 400).map((r) => r.avid);
      if (results.length) {
        input.value = bad.join(" ");
        input.dispatchEvent(new Event("input")); // shrink back to one line
      }
      clearTimeout(onAdd.timer);
      onAdd.timer = setTimeout(() => list.replaceChildren(), 15000);
    } finally {
      button.disabled = false;
    }
  }

  // -- start ------------------------------------------------------------------------------

  function start() {
    $("#add-form").addEventListener("submit", onAdd);
    $("#add-input").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("#add-form").requestSubmit(); }
    });
    $("#add-input").addEventListener("input", (e) => {
      const t = e.target;
      t.style.height = "auto";
      t.style.height = Math.min(240, t.scrollHeight + 2) + "px";
    });
    let searchTimer = 0;
    $("#search").addEventListener("input", (e) => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => { lib.search = e.target.value.trim(); lib.items = []; loadLibrary(); }, 250);
    });
    document.querySelectorAll(".segmented button").forEach((b) => b.addEventListener("click", () => {
      document.querySelectorAll(".segmented button").forEach((x) => x.classList.toggle("on", x === b));
      lib.status = b.dataset.status;
      lib.items = [];
      loadLibrary();
    }));
    $("#library-more").addEventListener("click", () => loadLibrary({ more: true }));
    $("#forget-token").hidden = !token;
    $("#forget-token").addEventListener("click", () => {
      localStorage.removeItem(TOKEN_KEY);
      token = "";
      tokenDeclined = false;
      location.reload();
    });

    // A language switch says every word again: the queue, the grid, the pills, the sources.
    i18n.onChange(() => {
      renderJobs();
      loadLibrary();
      if (liveText) liveText();
      loadHealth();
      loadSources();
    });

    loadHealth();
    setInterval(loadHealth, 15000);
    // The first API call settles the token question before the WebSocket needs it.
    loadLibrary().then(() => {
      connect();
      loadSources();
      setInterval(loadSources, 30000);
    });
    renderJobs();
  }

  start();

  // What the detail view (detail.js, loaded next) shares with this page.
  window.nassavPage = {
    api, withToken, stageName, el,
    // "3 minutes ago" in the page's language, from a Unix time in seconds ("" without one).
    ago: (ts) => (ts && i18n && i18n.relative ? i18n.relative(ts - Date.now() / 1000) : ""),
    bytes: typeof bytes === "function" ? bytes : undefined, // i18n.js may format sizes instead
    onEvent: (fn) => { eventListeners.push(fn); },
    liveJob: (avid) => [...jobs.values()].find((j) => j.avid === avid && !isDone(j)) || null,
    refreshLibrary: () => refreshLibrarySoon(0),
  };
})();
