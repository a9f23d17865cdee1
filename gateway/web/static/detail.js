// nassav web page: the detail view of one title (a modal dialog over the library).
// Opened by the address #/AVID (each library card links there), so it can be linked and
// survives a reload; Esc, the close button or Back close it. It shows the player, the
// metadata, the files, the history of attempts and the actions, and follows the title's live
// job on the page's event connection. Uses what app.js shares in window.nassavPage.
"use strict";

(() => {
  const page = window.nassavPage;
  if (!page) return; // app.js did not start: nothing to attach to
  const { api, withToken, stageName, el } = page; // stage words: the same (and keys) as the queue's
  const i18n = window.nassavI18n || {};
  // Sizes and dates in the page's language when i18n.js formats them, else app.js's way.
  const bytes = (n) => (i18n.bytes ? i18n.bytes(n) : page.bytes(n));
  const when = (s) => (s ? new Date(s * 1000).toLocaleString(i18n.lang || undefined) : "");
  const ROUTE = /^#\/([A-Za-z0-9-]{1,40})$/;
  const ATTEMPTS_PAGE = 10;

  const button = (cls, text, onClick) => {
    const b = el("button", cls, text);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  };
  const enc = encodeURIComponent;

  // -- the dialog's frame (built once) ------------------------------------------------------

  const dialog = el("dialog", "detail");
  dialog.id = "detail";
  dialog.setAttribute("aria-labelledby", "detail-title");
  const head = el("div", "detail-head");
  const title = el("h2");
  title.id = "detail-title";
  title.tabIndex = -1;
  const closeButton = button("icon close", "×", () => { clearRoute(); dialog.close(); });
  head.append(title, closeButton);
  const notice = el("div", "detail-notice");
  notice.setAttribute("role", "alert");
  notice.hidden = true;
  const media = el("div", "detail-media");
  const live = el("div", "detail-live");
  live.setAttribute("aria-live", "polite");
  live.hidden = true;
  const actions = el("div", "detail-actions");
  actions.setAttribute("role", "group");
  const facts = el("dl", "detail-facts");
  const filesHead = el("h3");
  const files = el("table", "detail-files");
  const historyHead = el("h3");
  const historyList = el("ol", "detail-history");
  const historyEmpty = el("p", "empty");
  const historyMore = button("ghost small", "", () => loadAttempts(true));
  // The title's blocklist entries (pipeline/blocklist.py): the whole AVID, or sources for it.
  const blockHead = el("h3");
  const blockBox = el("div", "detail-blocklist");

  // The frame's own words (again when the language changes).
  function labelFrame() {
    closeButton.setAttribute("aria-label", t("detail.close", "Close"));
    closeButton.title = t("detail.close", "Close");
    actions.setAttribute("aria-label", t("detail.actions", "Actions"));
    filesHead.textContent = t("detail.files", "Files");
    historyHead.textContent = t("detail.history", "History of attempts");
    historyEmpty.textContent = t("detail.history_none", "No attempt recorded yet.");
    historyMore.textContent = t("detail.history_more", "Show older attempts");
    blockHead.textContent = t("hist.blocklist", "Blocklist");
  }
  labelFrame();
  const body = el("div", "detail-body");
  const info = el("div", "detail-info");
  info.append(facts, filesHead, files, blockHead, blockBox, historyHead, historyList, historyEmpty, historyMore);
  body.append(media, live, actions, info);
  dialog.append(head, notice, body);
  document.body.append(dialog);

  // -- state ------------------------------------------------------------------------------

  const view = { avid: "", full: "", meta: null, seq: 0, attempts: [], attemptsTotal: 0, opener: null, busy: false,
                 blocklist: null, sources: [] };

  function showNotice(text, kind = "error") {
    notice.textContent = text || "";
    notice.className = "detail-notice " + kind;
    notice.hidden = !text;
  }

  // An API answer that is not a success is shown in the dialog, never dropped.
  function failed(r, what) {
    const msg = (r.body && r.body.message) || t("detail.http", "HTTP {status}", { status: r.status || "—" });
    showNotice(t("detail.failed", "{what} failed: {message}", { what, message: msg }));
  }

  // -- opening and closing ------------------------------------------------------------------

  function open(avid) {
    if (view.avid !== avid) {
      view.avid = avid;
      view.full = avid;
      view.meta = null;
      view.attempts = [];
      view.blocklist = null;
      blockBox.replaceChildren();
      dropVideo();
      media.replaceChildren();
      facts.replaceChildren();
      files.replaceChildren();
      historyList.replaceChildren();
      live.hidden = true;
      showNotice("");
    }
    title.replaceChildren(el("span", "avid", avid));
    if (!dialog.open) {
      view.opener = document.activeElement;
      dialog.showModal();
    }
    closeButton.focus();
    renderActions();
    followJob(page.liveJob(avid));
    load();
  }

  // The address forgets the title as soon as the dialog starts closing (Esc, the close button,
  // delete all), not in the close event: that comes a moment later, and a link to the same title
  // followed meanwhile must still open it.
  function clearRoute() {
    if (ROUTE.test(location.hash)) window.history.replaceState(null, "", location.pathname + location.search);
  }
  dialog.addEventListener("cancel", clearRoute); // Esc

  // A closed view holds no player: its connection to the video would stay open otherwise.
  function dropVideo() {
    const video = media.querySelector("video");
    if (!video) return;
    video.pause();
    video.removeAttribute("src");
    video.load();
    video.remove();
  }

  dialog.addEventListener("close", () => {
    dropVideo();
    const avid = view.avid;
    view.avid = "";
    view.seq++;
    // Back to where the user was: the card they opened, else what had the focus.
    const card = document.querySelector(`.card[data-avid="${CSS.escape(avid)}"] a.open`);
    const back = card || view.opener;
    if (back && back.isConnected && typeof back.focus === "function") back.focus();
  });

  function route() {
    const m = ROUTE.exec(location.hash);
    if (m) open(decodeURIComponent(m[1]).toUpperCase());
    else if (dialog.open) dialog.close();
  }
  window.addEventListener("hashchange", route);

  // -- loading --------------------------------------------------------------------------------

  async function load() {
    const seq = ++view.seq;
    const avid = view.avid;
    const [m, a, b, s] = await Promise.all([
      api(`api/resource/metadata?avid=${enc(avid)}`),
      api(`api/resource/${enc(avid)}/history?page_size=${ATTEMPTS_PAGE}`),
      api(`api/blocklist/${enc(avid)}`),
      view.sources.length ? null : api("api/source/list"),
    ]);
    if (seq !== view.seq) return; // closed, or another title opened meanwhile
    if (m.status === 200 && m.body && m.body.data) {
      view.meta = m.body.data;
      // The address may hold any spelling (abc123); events and the API's answers use the code.
      if (view.meta.avid && view.meta.avid !== view.avid) view.avid = view.meta.avid;
      view.full = view.meta.edition ? `${avid}-${view.meta.edition}` : avid;
      if (notice.classList.contains("missing")) showNotice("");
    } else {
      view.meta = null;
      if (m.status === 404) {
        showNotice(t("detail.missing", "{avid} is not in the library (or has no readable metadata).", { avid }), "missing");
      } else {
        failed(m, t("detail.loading", "Loading the metadata"));
      }
    }
    if (a.status === 200 && a.body) {
      view.attempts = a.body.data || [];
      view.attemptsTotal = (a.body.pagination && a.body.pagination.total) || view.attempts.length;
    } else {
      failed(a, t("detail.history_loading", "Loading the history"));
    }
    if (b.status === 200 && b.body && b.body.data) view.blocklist = b.body.data;
    else failed(b, t("hist.blocklist_loading", "Loading the blocklist"));
    if (s && s.status === 200 && s.body) {
      const list = Array.isArray(s.body.data) ? s.body.data : ((s.body.data && s.body.data.items) || []);
      view.sources = list.map((x) => x.name).filter(Boolean);
    }
    render();
  }

  async function loadAttempts(more) {
    const seq = view.seq;
    const pageNo = more ? Math.floor(view.attempts.length / ATTEMPTS_PAGE) + 1 : 1;
    const r = await api(`api/resource/${enc(view.avid)}/history?page=${pageNo}&page_size=${ATTEMPTS_PAGE}`);
    if (seq !== view.seq) return;
    if (r.status !== 200 || !r.body) { failed(r, t("detail.history_loading", "Loading the history")); return; }
    const seen = new Set(view.attempts.map((x) => x.job_id));
    view.attempts = view.attempts.concat((r.body.data || []).filter((x) => !seen.has(x.job_id)));
    view.attemptsTotal = (r.body.pagination && r.body.pagination.total) || view.attempts.length;
    renderHistory();
  }

  // -- rendering ------------------------------------------------------------------------------

  function render() {
    const meta = view.meta;
    title.replaceChildren(el("span", "avid", view.full));
    const name = meta && (meta.title || meta.translated_title || meta.source_title || meta.original_title);
    if (name) title.append(el("span", "title", name));
    renderMedia();
    renderActions();
    renderFacts();
    renderFiles();
    renderBlocklist();
    renderHistory();
  }

  function coverUrl(size) {
    return withToken(`api/resource/cover?avid=${enc(view.avid)}&size=${size}`);
  }

  function renderMedia() {
    const meta = view.meta;
    const hasVideo = Boolean(meta && meta.has_video);
    const current = media.querySelector("video");
    if (hasVideo) {
      if (current) return; // keep playing through a refresh of the rest
      const video = el("video");
      video.controls = true;
      video.preload = "metadata";
      video.playsInline = true;
      video.poster = coverUrl("large");
      video.src = withToken(`api/resource/${enc(view.avid)}/video`);
      video.setAttribute("aria-label", t("detail.player", "Video of {avid}", { avid: view.full }));
      video.addEventListener("error", () => {
        if (!video.isConnected) return;
        const err = video.error;
        showNotice(t("detail.play_error", "The video cannot be played here ({detail}); the file is in the library folder.",
                     { detail: (err && err.message) || (err && `code ${err.code}`) || "?" }));
      });
      media.replaceChildren(video, ...partButtons(video, meta));
      return;
    }
    dropVideo();
    media.replaceChildren();
    if (!meta) return;
    const img = el("img", "detail-cover");
    img.alt = t("detail.cover", "Cover of {avid}", { avid: view.full });
    img.addEventListener("error", () => img.remove());
    img.src = coverUrl("large");
    media.append(img, el("p", "detail-novideo", t("detail.no_video", "No video downloaded yet.")));
  }

  // A title imported in parts (-cd1, -cd2…): one button per part (the API's ?part=N), and
  // the next part starts when one ends.
  function partButtons(video, meta) {
    const parts = Array.isArray(meta.videos) ? meta.videos : [];
    if (parts.length < 2) return [];
    const nav = el("div", "detail-parts");
    nav.setAttribute("role", "group");
    nav.setAttribute("aria-label", t("detail.parts", "Parts of {avid}", { avid: view.full }));
    const buttons = parts.map((_, i) => {
      const b = button("part", t("detail.part", "Part {n}", { n: i + 1 }), () => choose(i, true));
      b.dataset.part = String(i + 1);
      return b;
    });
    const choose = (i, play) => {
      const q = i ? `?part=${i + 1}` : "";
      video.src = withToken(`api/resource/${enc(view.avid)}/video${q}`);
      buttons.forEach((b, j) => b.setAttribute("aria-pressed", String(i === j)));
      if (play) video.play().catch(() => {});
    };
    buttons.forEach((b, j) => b.setAttribute("aria-pressed", String(j === 0)));
    video.addEventListener("ended", () => {
      const i = buttons.findIndex((b) => b.getAttribute("aria-pressed") === "true");
      if (i >= 0 && i + 1 < buttons.length) choose(i + 1, true);
    });
    nav.append(...buttons);
    return [nav];
  }

  function renderActions() {
    const meta = view.meta;
    const user = (meta && meta.user) || {};
    const hasVideo = Boolean(meta && meta.has_video);
    const running = Boolean(page.liveJob(view.avid));
    const list = [];
    const add = (cls, text, fn, opts = {}) => {
      const b = button(cls, text, async () => {
        if (view.busy) return;
        view.busy = true;
        actions.setAttribute("aria-busy", "true");
        try { await fn(); } finally { view.busy = false; actions.removeAttribute("aria-busy"); }
      });
      b.dataset.action = opts.action;
      if (opts.pressed !== undefined) b.setAttribute("aria-pressed", String(Boolean(opts.pressed)));
      if (opts.disabled) b.disabled = true;
      if (opts.title) b.title = opts.title;
      list.push(b);
    };
    if (!hasVideo) {
      add("primary", t("detail.download", "Download"), onDownload,
          { action: "download", disabled: running, title: running ? t("detail.running", "A job is running for this title") : "" });
    }
    add("", t("detail.refresh", "Refresh metadata"), onRefresh, { action: "refresh", disabled: running });
    const latest = view.attempts[0];
    // An import's title job is not retried stage by stage (the API says to run the import again);
    // a cancelled job may be retried like a failed one (gateway/api/retry.py).
    if (latest && (latest.status === "failed" || latest.status === "cancelled") && latest.kind !== "import" && !running) {
      add("", t("hist.retry", "Retry from {stage}", { stage: stageName(retryStage(latest.stage)) }), onRetry,
          { action: "retry", title: t("hist.retry_title", "Run the job again, with the same options, from the stage where it stopped") });
    }
    if (meta) {
      add("toggle", (user.is_favorite ? "★ " : "☆ ") + t("detail.favourite", "Favourite"),
          () => setStatus({ is_favorite: !user.is_favorite }), { action: "favourite", pressed: user.is_favorite });
      add("toggle", (user.watched ? "✓ " : "") + t("detail.watched", "Watched"),
          () => setStatus({ watched: !user.watched }), { action: "watched", pressed: user.watched });
    }
    if (hasVideo) add("", t("detail.upgrade", "Look for a better edition"), onUpgrade, { action: "upgrade", disabled: running });
    if (hasVideo) add("danger", t("detail.delete_video", "Delete video"), onDeleteVideo, { action: "delete-video", disabled: running });
    if (meta || hasVideo) add("danger", t("detail.delete_all", "Delete all"), onDeleteAll, { action: "delete-all", disabled: running });
    // Keep the focus on the same action when the row is rebuilt.
    const focused = actions.contains(document.activeElement) ? document.activeElement.dataset.action : "";
    actions.replaceChildren(...list);
    if (focused) {
      const again = list.find((b) => b.dataset.action === focused && !b.disabled);
      (again || closeButton).focus();
    }
  }

  function fact(label, value) {
    if (value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length)) return;
    const dt = el("dt", "", label);
    const dd = el("dd");
    if (value instanceof Node) dd.append(value);
    else if (Array.isArray(value)) dd.append(...value.map((v) => el("span", "tag", v)));
    else dd.textContent = String(value);
    facts.append(dt, dd);
  }

  function renderFacts() {
    facts.replaceChildren();
    const meta = view.meta;
    if (!meta) return;
    const names = (list) => (Array.isArray(list) ? list : []).map((a) => (a && typeof a === "object" ? a.name : a)).filter(Boolean);
    const seen = new Set([meta.title]);
    for (const [key, label] of [["original_title", t("detail.original_title", "Original title")],
                                ["source_title", t("detail.source_title", "Title at the source")],
                                ["translated_title", t("detail.translated_title", "Translated title")]]) {
      if (meta[key] && !seen.has(meta[key])) { seen.add(meta[key]); fact(label, meta[key]); }
    }
    fact(t("detail.released", "Released"), meta.release_date);
    if (meta.runtime_min) fact(t("detail.runtime", "Runtime"), t("detail.minutes", "{n} min", { n: meta.runtime_min }));
    fact(t("detail.actors", "Actors"), names(meta.actors));
    fact(t("detail.genres", "Genres"), names(meta.genres));
    fact(t("detail.maker", "Maker"), meta.studio);
    fact(t("detail.label", "Label"), meta.label);
    fact(t("detail.series", "Series"), meta.series);
    fact(t("detail.director", "Director"), meta.director);
    const src = meta.source && typeof meta.source === "object" ? meta.source : {};
    if (src.name) {
      let value = src.name;
      if (/^https?:\/\//.test(src.page_url || "")) {
        value = el("a", "", src.name);
        value.href = src.page_url;
        value.target = "_blank";
        value.rel = "noopener noreferrer";
      }
      fact(t("detail.source", "Source"), value);
    }
    const video = meta.has_video && meta.video && typeof meta.video === "object" ? meta.video : null;
    if (video && video.duration_s) {
      const s = Math.round(video.duration_s);
      fact(t("detail.duration", "Duration"), `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`);
    }
    if (video && video.completed_at) fact(t("detail.downloaded_at", "Downloaded"), when(video.completed_at));
    if (video) fact(t("detail.edition", "Edition"), editionName(meta.edition));
  }

  // The edition the library holds (pipeline/editions.py::NAMES); "" is the regular release.
  function editionName(code) {
    if (code === "C") return t("edition.c", "Chinese subtitles");
    if (code === "UC") return t("edition.uc", "Uncensored, Chinese subtitles");
    if (code === "U") return t("edition.u", "Uncensored");
    return t("edition.regular", "Regular");
  }

  function renderFiles() {
    const list = (view.meta && Array.isArray(view.meta.files)) ? view.meta.files : [];
    filesHead.hidden = files.hidden = !list.length;
    files.replaceChildren(...list.map((f) => {
      const tr = el("tr");
      tr.append(el("td", "name", f.name), el("td", "size", bytes(Number(f.bytes) || 0)));
      return tr;
    }));
  }

  function statusText(a) {
    const words = {
      queued: t("detail.status_queued", "waiting"), running: t("detail.status_running", "running"),
      completed: t("detail.status_completed", "completed"), failed: t("detail.status_failed", "failed"),
      cancelled: t("detail.status_cancelled", "cancelled"),
    };
    return words[a.status] || a.status;
  }

  function renderHistory() {
    historyList.replaceChildren(...view.attempts.map((a) => {
      const li = el("li", "attempt " + (a.status || ""));
      li.dataset.jobId = a.job_id;
      const top = el("div", "attempt-head");
      top.append(el("b", "status", statusText(a)),
                 el("span", "kind", a.kind === "download" ? t("detail.kind_download", "download")
                   : a.kind === "metadata" ? t("detail.kind_metadata", "metadata")
                   : a.kind === "upgrade" ? t("detail.kind_upgrade", "edition upgrade") : (a.kind || "")),
                 el("span", "stage", a.stage ? t("detail.at_stage", "at {stage}", { stage: stageName(a.stage) }) : ""),
                 el("span", "spacer"));
      const time = el("time", "", when(a.started_at));
      time.dateTime = new Date(a.started_at * 1000).toISOString();
      top.append(time);
      li.append(top);
      const more = [];
      if (a.source) more.push(t("detail.via", "via {source}", { source: a.source }));
      if (a.ended_at) {
        const took = Math.max(0, a.ended_at - a.started_at);
        more.push(t("detail.took", "took {s} s", { s: took < 10 ? took.toFixed(1) : Math.round(took) }));
      }
      if (more.length) li.append(el("div", "attempt-more", more.join(" · ")));
      if (a.message) li.append(el("div", "attempt-message", a.message));
      if (Array.isArray(a.stages) && a.stages.length) li.append(stageList(a.stages));
      return li;
    }));
    historyEmpty.hidden = view.attempts.length > 0;
    historyMore.hidden = view.attempts.length >= view.attemptsTotal;
  }

  // What each stage of a job did, and every source it asked (with a button to block a source
  // that had the title but whose copy is bad).
  function stageList(stages) {
    const ul = el("ul", "attempt-stages");
    for (const s of stages) {
      const li = el("li", "stage-row " + (s.outcome || "").replace(/\s+/g, "-"));
      const bits = [];
      if (s.stage === "queued") {
        const d = s.detail || {};
        if (d.retry_of) bits.push(t("hist.retry_of", "retry of {job} from {stage}", { job: String(d.retry_of).slice(0, 8), stage: stageName(d.start_stage || "") }));
        if (d.refresh) bits.push(t("hist.refresh", "refresh: {parts}", { parts: d.refresh }));
        if (d.subscription) bits.push(t("hist.by_subscription", "found by subscription {id}", { id: d.subscription }));
        if (d.import_id) bits.push(t("hist.by_import", "imported ({id})", { id: d.import_id }));
      } else {
        if (s.source) bits.push(t("detail.via", "via {source}", { source: s.source }));
        if (s.took_s !== null && s.took_s !== undefined) bits.push(t("detail.took", "took {s} s", { s: s.took_s < 10 ? Number(s.took_s).toFixed(1) : Math.round(s.took_s) }));
        if (s.bytes) bits.push(bytes(s.bytes));
      }
      li.append(el("b", "stage", s.stage === "queued" ? t("hist.asked", "asked") : stageName(s.stage)),
                el("span", "outcome", outcomeText(s.outcome)), el("span", "more", bits.join(" · ")));
      if (s.message && s.outcome !== "done") li.append(el("div", "attempt-message", s.message));
      if (Array.isArray(s.sources) && s.sources.length) {
        const srcs = el("ul", "stage-sources");
        for (const o of s.sources) {
          const row = el("li", "source-outcome " + (o.outcome || "").replace(/\s+/g, "-"));
          row.append(el("span", "name", o.source), el("span", "outcome", outcomeText(o.outcome)));
          if (o.detail) row.append(el("span", "detail", o.detail));
          if (o.outcome === "found" && (s.stage === "resolve" || s.stage === "re-resolve") && !sourceBlocked(o.source)) {
            row.append(button("ghost small", t("hist.block_source", "Block for this title"), () => onBlockSource(o.source)));
          }
          srcs.append(row);
        }
        li.append(srcs);
      }
      ul.append(li);
    }
    return ul;
  }

  function outcomeText(o) {
    const words = {
      found: t("hist.found", "found"), "not found": t("hist.not_found", "not found"),
      blocked: t("hist.blocked", "blocked by the site"), "blocked by the user": t("hist.blocked_by_user", "blocked by the user"),
      "layout changed": t("hist.layout_changed", "page layout changed"), "upstream error": t("hist.upstream_error", "site error"),
      skipped: t("hist.skipped", "skipped (backing off)"), reused: t("hist.reused", "reused"), done: t("hist.done", "done"),
      failed: t("detail.status_failed", "failed"), cancelled: t("detail.status_cancelled", "cancelled"),
      queued: t("detail.status_queued", "waiting"),
    };
    return words[o] || o || "";
  }

  // The stage a retry starts from (as the API decides, gateway/api/retry.py).
  function retryStage(stage) {
    if (stage === "download-wait" || stage === "re-resolve") return "download";
    return ["resolve", "scrape", "cover", "download"].includes(stage) ? stage : "resolve";
  }

  function sourceBlocked(name) {
    const b = view.blocklist;
    return Boolean(b && (b.sources || []).some((e) => e.source === name));
  }

  function renderBlocklist() {
    const b = view.blocklist;
    if (!b) { blockBox.replaceChildren(); return; }
    const rows = [];
    const whole = el("div", "block-row");
    if (b.blocked) {
      whole.append(el("span", "blocked", b.blocked.reason
        ? t("hist.avid_blocked_why", "{avid} is on the blocklist: {reason}", { avid: b.avid, reason: b.blocked.reason })
        : t("hist.avid_blocked", "{avid} is on the blocklist: it is never queued again.", { avid: b.avid })));
      whole.append(button("small", t("hist.unblock", "Remove from the blocklist"), onUnblock));
    } else {
      whole.append(el("span", "muted", t("hist.not_blocked", "Not on the blocklist.")));
      whole.append(button("small danger", t("hist.block", "Block this title"), onBlock));
    }
    rows.push(whole);
    for (const e of b.sources || []) {
      const r = el("div", "block-row");
      r.append(el("span", "", e.reason
        ? t("hist.source_blocked_why", "{source} is skipped for this title: {reason}", { source: e.source, reason: e.reason })
        : t("hist.source_blocked", "{source} is skipped for this title.", { source: e.source })));
      r.append(button("small", t("hist.unblock_source", "Use it again"), () => onUnblockSource(e.source)));
      r.dataset.source = e.source;
      rows.push(r);
    }
    const free = view.sources.filter((n) => !sourceBlocked(n));
    if (free.length) {
      const r = el("div", "block-row");
      const pick = el("select");
      pick.setAttribute("aria-label", t("hist.pick_source", "Source to skip for this title"));
      pick.append(...free.map((n) => { const o = el("option", "", n); o.value = n; return o; }));
      r.append(pick, button("small", t("hist.block_source", "Block for this title"), () => onBlockSource(pick.value)));
      rows.push(r);
    }
    blockBox.replaceChildren(...rows);
  }

  // -- live progress ------------------------------------------------------------------------

  function followJob(j) {
    if (!j) { live.hidden = true; return; }
    live.hidden = false;
    let bar = live.querySelector(".bar");
    if (!bar) {
      bar = el("div", "bar");
      bar.setAttribute("role", "progressbar");
      bar.setAttribute("aria-valuemin", "0");
      bar.setAttribute("aria-valuemax", "100");
      bar.append(el("div"));
      live.replaceChildren(el("div", "live-text"), bar);
    }
    const downloading = j.stage === "download";
    const pct = Math.max(0, Math.min(100, Number(j.percent) || 0));
    const stage = j.status === "queued" ? t("queue.waiting_worker", "waiting for a worker")
      : j.stage === "download-wait" ? t("queue.waiting_slot", "waiting for a download slot")
        : stageName(j.stage);
    live.querySelector(".live-text").textContent = downloading
      ? t("detail.live_download", "Downloading: {pct}{speed}", {
        pct: i18n.percent ? i18n.percent(pct) : `${pct.toFixed(1)} %`, speed: j.speed ? ` · ${j.speed}` : "" })
      : t("detail.live_running", "Working: {stage}", { stage });
    bar.classList.toggle("indeterminate", !downloading);
    bar.firstChild.style.width = (downloading ? pct : 0) + "%";
    bar.setAttribute("aria-valuenow", String(downloading ? Math.round(pct) : 0));
  }

  let reloadTimer = 0;
  function reloadSoon(ms = 300) {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(() => { if (dialog.open) load(); }, ms);
  }

  page.onEvent((m) => {
    const d = m.data || {};
    if (!dialog.open || !view.avid || d.avid !== view.avid) return;
    // app.js has applied the message already: its job record is the title's live state.
    const j = page.liveJob(view.avid);
    followJob(j);
    if (["queued", "task_started", "task_completed", "task_failed", "stage_finished", "warning"].includes(m.type) ||
        m.type === "video_deleted" || m.type === "resource_deleted") {
      reloadSoon();
    }
    if (m.type === "queued" || m.type === "task_completed" || m.type === "task_failed") renderActions();
    // "Download queued" and the like are done with once the job ends; errors stay.
    if ((m.type === "task_completed" || m.type === "task_failed") && notice.classList.contains("info")) showNotice("");
  });

  // -- actions ---------------------------------------------------------------------------------

  async function onDownload() {
    const r = await api(`api/downloads/${enc(view.full)}`, { method: "POST" });
    if (r.status === 202) showNotice(t("detail.queued", "Download queued."), "info");
    else failed(r, t("detail.download", "Download"));
    reloadSoon(0);
  }

  async function onRefresh() {
    const r = await api(`api/resource/refresh/${enc(view.full)}`, { method: "POST" });
    if (r.status === 202) showNotice(t("detail.refresh_queued", "Metadata refresh queued."), "info");
    else failed(r, t("detail.refresh", "Refresh metadata"));
    reloadSoon(0);
  }

  async function onUpgrade() {
    const r = await api(`api/resource/${enc(view.avid)}/upgrade`, { method: "POST" });
    if (r.status === 202) showNotice(t("detail.upgrade_queued", "Looking for a better edition; a better one replaces the video once it is verified."), "info");
    else failed(r, t("detail.upgrade", "Look for a better edition"));
    reloadSoon(0);
  }

  async function onRetry() {
    const r = await api(`api/resource/${enc(view.avid)}/retry`, { method: "POST" });
    if (r.status === 202) showNotice(t("hist.retry_queued", "Queued again from {stage}.", { stage: stageName(r.body.data.stage) }), "info");
    else failed(r, t("hist.retry_what", "Retry"));
    reloadSoon(0);
  }

  async function blocklistChange(path, method, json, what) {
    const r = await api(path, json ? { method, json } : { method });
    if (r.status !== 200 && r.status !== 201) { failed(r, what); return; }
    showNotice(r.body.message || "", "info");
    reloadSoon(0);
  }

  async function onBlock() {
    const reason = window.prompt(t("hist.block_prompt", "Block {avid}: it will never be queued again. Reason (optional):", { avid: view.avid }), "");
    if (reason === null) return;
    await blocklistChange(`api/blocklist/${enc(view.avid)}`, "POST", { reason }, t("hist.block", "Block this title"));
  }

  async function onUnblock() {
    await blocklistChange(`api/blocklist/${enc(view.avid)}`, "DELETE", null, t("hist.unblock", "Remove from the blocklist"));
  }

  async function onBlockSource(source) {
    const reason = window.prompt(t("hist.block_source_prompt", "Skip {source} for {avid} (its copy is broken). Reason (optional):", { source, avid: view.avid }), "");
    if (reason === null) return;
    await blocklistChange(`api/blocklist/${enc(view.avid)}`, "POST", { source, reason }, t("hist.block_source", "Block for this title"));
  }

  async function onUnblockSource(source) {
    await blocklistChange(`api/blocklist/${enc(view.avid)}/${enc(source)}`, "DELETE", null, t("hist.unblock_source", "Use it again"));
  }

  async function setStatus(change) {
    const r = await api(`api/resource/${enc(view.avid)}/status`, { method: "PATCH", json: change });
    if (r.status !== 200 || !r.body || !r.body.data) { failed(r, t("detail.save_status", "Saving")); return; }
    if (view.meta) {
      const d = r.body.data;
      view.meta.user = { watched: Boolean(d.watched), is_favorite: Boolean(d.is_favorite) };
    }
    renderActions();
    page.refreshLibrary();
  }

  async function onDeleteVideo() {
    if (!window.confirm(t("detail.confirm_delete_video", "Delete the video of {avid}? The metadata and covers stay.", { avid: view.full }))) return;
    let r = await api(`api/resource/${enc(view.full)}/video`, { method: "DELETE" });
    const kept = r.status === 409 && r.body && r.body.data && r.body.data.in_place ? r.body.data.files || [] : null;
    if (kept) {
      // Imported in place: the file is the user's own where it lies; ask again, naming it.
      if (!window.confirm(t("detail.confirm_delete_original",
          "The video of {avid} is your original file, imported in place:\n{path}\nDelete this file from your disk?",
          { avid: view.full, path: kept.join("\n") }))) return;
      r = await api(`api/resource/${enc(view.full)}/video?delete_file=true`, { method: "DELETE" });
    }
    if (r.status !== 200) { failed(r, t("detail.delete_video", "Delete video")); return; }
    showNotice(t("detail.video_deleted", "The video was deleted."), "info");
    if (view.meta) view.meta.has_video = false;
    renderMedia();
    page.refreshLibrary();
    reloadSoon(0);
  }

  async function onDeleteAll() {
    if (!window.confirm(t("detail.confirm_delete_all", "Delete {avid} entirely: video, metadata, covers and NFO?", { avid: view.full }))) return;
    const r = await api(`api/resource/${enc(view.full)}`, { method: "DELETE" });
    if (r.status !== 200) { failed(r, t("detail.delete_all", "Delete all")); return; }
    page.refreshLibrary();
    clearRoute();
    dialog.close();
  }

  if (i18n.onChange) {
    i18n.onChange(() => {
      labelFrame();
      if (dialog.open) { render(); followJob(page.liveJob(view.avid)); }
    });
  }

  route(); // an address like /#/ABC-123 opens the title at once
})();
