// nassav web page: the Notifications panel. The configured targets and media servers (masked,
// as GET /api/notifications/targets gives them) each with a "Send a test" button that follows
// its delivery to the end; the latest deliveries (status, attempts, last HTTP status or error,
// event, time) filtered by status, failed first. It reloads when a notify_failed or
// notify_test event arrives on the page's connection (deliveries that succeed send no event:
// the Refresh button and a slow timer cover those). Uses what app.js shares in window.nassavPage.
"use strict";

(() => {
  const page = window.nassavPage;
  if (!page) return; // app.js did not start: nothing to attach to
  const { api, el, ago } = page;
  const i18n = window.nassavI18n || {};
  const side = document.querySelector("aside.side");
  if (!side) return;
  const enc = encodeURIComponent;
  // The filter's choices, failed first: what needs a look comes before what went well.
  const FILTERS = ["failed", "lost", "retrying", "queued", "delivered", "all"];
  const FINAL = ["delivered", "failed", "lost"];

  const statusName = (s) => ({
    queued: t("notify.status_queued", "queued"), retrying: t("notify.status_retrying", "retrying"),
    delivered: t("notify.status_delivered", "delivered"), failed: t("notify.status_failed", "failed"),
    lost: t("notify.status_lost", "lost"), all: t("notify.status_all", "all"),
  })[s] || s;

  // -- the panel (built once, its words set again when the language changes) --------------

  const panel = el("section", "panel notify-panel");
  panel.id = "notify-panel";
  panel.setAttribute("aria-labelledby", "notify-title");
  const head = el("div", "panel-head");
  const title = el("h2");
  title.id = "notify-title";
  const refresh = el("button", "ghost small notify-refresh");
  refresh.type = "button";
  head.append(title, refresh);
  const targetsHead = el("h3");
  const targets = el("ul", "notify-targets");
  const noTargets = el("p", "empty notify-no-targets");
  const deliveriesHead = el("div", "notify-deliveries-head");
  const deliveriesTitle = el("h3");
  const filter = el("select", "notify-filter");
  filter.name = "status";
  deliveriesHead.append(deliveriesTitle, filter);
  const list = el("ol", "notify-deliveries");
  list.setAttribute("aria-live", "polite");
  const empty = el("p", "empty notify-empty");
  panel.append(head, targetsHead, targets, noTargets, deliveriesHead, list, empty);
  side.append(panel);

  function label() {
    title.textContent = t("notify.title", "Notifications");
    refresh.textContent = t("notify.refresh", "Refresh");
    refresh.title = t("notify.refresh_title", "read the targets and deliveries again");
    targetsHead.textContent = t("notify.targets", "Targets");
    noTargets.textContent = t("notify.no_targets", "No target configured (see {keys} in the config).",
                              { keys: "notify.targets, media_servers" });
    deliveriesTitle.textContent = t("notify.deliveries", "Latest deliveries");
    filter.setAttribute("aria-label", t("notify.filter_label", "show deliveries that are"));
    const chosen = filter.value || "failed";
    filter.replaceChildren(...FILTERS.map((s) => {
      const o = el("option", "", statusName(s));
      o.value = s;
      return o;
    }));
    filter.value = chosen;
  }
  label();
  if (i18n.onChange) i18n.onChange(() => { label(); render(); });

  // -- data ---------------------------------------------------------------------------------

  let targetItems = [];
  let deliveries = [];
  const tests = new Map(); // target name -> {id, status, text} of its last test

  async function load() {
    const status = filter.value || "failed";
    const [tg, dl] = await Promise.all([
      api("api/notifications/targets"),
      api("api/notifications/deliveries?limit=50" + (status === "all" ? "" : "&status=" + enc(status))),
    ]);
    if (tg.status === 200 && tg.body && Array.isArray(tg.body.data)) targetItems = tg.body.data;
    if (dl.status === 200 && dl.body && Array.isArray(dl.body.data)) deliveries = dl.body.data;
    render();
  }

  function outcome(d) {
    // One delivery's result in words: its status, then the last answer or error.
    const parts = [statusName(d.status)];
    if (d.http_status) parts.push("HTTP " + d.http_status);
    if (d.last_error) parts.push(d.last_error);
    return parts.join(" · ");
  }

  function renderTargets() {
    targets.replaceChildren(...targetItems.map((x) => {
      const li = el("li");
      li.dataset.target = x.name;
      const what = el("div", "notify-what");
      what.append(el("b", "", x.name), el("span", "muted", " · " + x.kind + " · " + (x.urls || []).join(", ")));
      const events = el("div", "muted notify-events", t("notify.events", "events: {events}",
                                                         { events: (x.events || []).join(", ") }));
      const row = el("div", "notify-test-row");
      const send = el("button", "ghost small notify-test", t("notify.send_test", "Send a test"));
      send.type = "button";
      send.addEventListener("click", () => sendTest(x.name));
      const shown = tests.get(x.name);
      const result = el("span", "notify-test-result" + (shown ? " " + shown.status : ""), shown ? shown.text : "");
      result.setAttribute("role", "status");
      row.append(send, result);
      li.append(what, events, row);
      return li;
    }));
    noTargets.hidden = targetItems.length > 0;
  }

  function renderDeliveries() {
    list.replaceChildren(...deliveries.map((d) => {
      const li = el("li", "status-" + d.status);
      li.dataset.id = d.id;
      li.dataset.status = d.status;
      const what = el("div", "notify-what");
      what.append(el("b", "", d.target), el("span", "muted", " · " + d.event + (d.avid ? " · " + d.avid : "")),
                  el("span", "notify-status", statusName(d.status)));
      const facts = [t("notify.attempts", "attempts: {n}", { n: String(d.attempts || 0) })];
      if (d.http_status) facts.push("HTTP " + d.http_status);
      if (d.updated_at) facts.push(ago(d.updated_at));
      // A worker died with it queued or retrying: it was sent again once (notify_recover.py).
      if (d.recovered) facts.push(t("notify.recovered", "sent again after a stall"));
      const when = el("div", "muted notify-facts", facts.join(" · "));
      li.append(what, when);
      if (d.last_error) li.append(el("div", "notify-error", d.last_error));
      return li;
    }));
    const status = filter.value || "failed";
    empty.textContent = status === "all" ? t("notify.empty_all", "No delivery recorded yet.")
      : t("notify.empty_status", "No {status} delivery.", { status: statusName(status) });
    empty.hidden = deliveries.length > 0;
  }

  function render() {
    renderTargets();
    renderDeliveries();
  }

  // -- a test: sent, then followed until its delivery is final -------------------------------

  async function sendTest(name) {
    tests.set(name, { id: "", status: "sending", text: t("notify.test_sending", "sending…") });
    renderTargets();
    const { status, body } = await api("api/notifications/test", { method: "POST", json: { target: name } });
    if (status !== 202 || !body || !body.data) {
      tests.set(name, { id: "", status: "failed", text: (body && body.message) ||
        t("notify.failed_http", "failed (HTTP {status})", { status: String(status) }) });
      renderTargets();
      return;
    }
    const id = body.data.delivery_id;
    // The API says when no worker serves the notify queue: the test then waits for one.
    tests.set(name, { id, status: "queued", text: body.message || t("notify.test_queued", "queued") });
    renderTargets();
    follow(name, id, Date.now() + 180000);
  }

  async function follow(name, id, until) {
    const mine = tests.get(name);
    if (!mine || mine.id !== id) return; // a newer test replaced this one
    const { status, body } = await api("api/notifications/deliveries?limit=50&target=" + enc(name));
    const d = status === 200 && body && Array.isArray(body.data) ? body.data.find((x) => x.id === id) : null;
    if (d) {
      const changed = d.status !== mine.status;
      mine.status = d.status;
      mine.text = t("notify.test_result", "test: {outcome}", { outcome: outcome(d) });
      renderTargets();
      if (changed) load();
      if (FINAL.includes(d.status)) return;
    }
    if (Date.now() < until) setTimeout(() => follow(name, id, until), 1000);
  }

  filter.addEventListener("change", load);
  refresh.addEventListener("click", load);
  if (page.onEvent) {
    page.onEvent((m) => { if (m && (m.type === "notify_failed" || m.type === "notify_test")) load(); });
  }
  load();
  setInterval(load, 60000);
})();
