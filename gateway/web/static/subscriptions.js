// nassav web page: the Subscriptions panel (follow an actress, a maker, a label, a series, a
// director or a search; see each one's last check; check now; unfollow). It sits in the side
// column and refreshes when a subscription_checked event arrives on the page's connection.
// Uses what app.js shares in window.nassavPage.
"use strict";

(() => {
  const page = window.nassavPage;
  if (!page) return; // app.js did not start: nothing to attach to
  const { api } = page;
  const i18n = window.nassavI18n || {};
  const side = document.querySelector("aside.side");
  if (!side) return;
  const KINDS = ["actress", "maker", "label", "series", "director", "search"];
  const enc = encodeURIComponent;

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  };
  const kindName = (k) => ({
    actress: t("subs.kind_actress", "Actress"), maker: t("subs.kind_maker", "Maker"),
    label: t("subs.kind_label", "Label"), series: t("subs.kind_series", "Series"),
    director: t("subs.kind_director", "Director"), search: t("subs.kind_search", "Search"),
  })[k] || k;
  const ago = (ts) => (ts && i18n.relative ? i18n.relative(ts - Date.now() / 1000) : "");

  // -- the panel (built once, its words set again when the language changes) --------------

  const panel = el("section", "panel subs-panel");
  panel.id = "subs-panel";
  panel.setAttribute("aria-labelledby", "subs-title");
  const head = el("div", "panel-head");
  const title = el("h2");
  title.id = "subs-title";
  head.append(title);
  const form = el("form", "subs-form");
  form.autocomplete = "off";
  const kind = el("select");
  kind.name = "kind";
  const key = el("input");
  key.name = "id_or_query";
  key.required = true;
  key.maxLength = 100;
  const action = el("select");
  action.name = "action";
  const backfill = el("input");
  backfill.name = "backfill";
  backfill.type = "number";
  backfill.min = "0";
  backfill.max = "10000";
  const since = el("input");
  since.name = "since";
  since.type = "date";
  const submit = el("button", "primary small");
  submit.type = "submit";
  form.append(kind, key, action, backfill, since, submit);
  const list = el("ul", "subs");
  list.setAttribute("aria-live", "polite");
  const empty = el("p", "empty");
  panel.append(head, form, list, empty);
  side.append(panel);

  function label() {
    title.textContent = t("subs.title", "Subscriptions");
    kind.setAttribute("aria-label", t("subs.kind_label_field", "what to follow"));
    kind.replaceChildren(...KINDS.map((k) => {
      const o = el("option", "", kindName(k));
      o.value = k;
      return o;
    }));
    key.placeholder = t("subs.key_placeholder", "id from its listing address, or search words");
    key.setAttribute("aria-label", t("subs.key_label", "the catalogue's id or a search query"));
    const chosen = action.value || "metadata";
    action.setAttribute("aria-label", t("subs.action_label", "what to do with new titles"));
    action.replaceChildren(...[["metadata", t("subs.action_metadata", "Metadata only")],
                               ["download", t("subs.action_download", "Download")]].map(([v, text]) => {
      const o = el("option", "", text);
      o.value = v;
      return o;
    }));
    action.value = chosen;
    backfill.placeholder = t("subs.backfill_placeholder", "first check: at most N");
    backfill.setAttribute("aria-label", t("subs.backfill_label", "titles the first check may queue"));
    since.setAttribute("aria-label", t("subs.since_label", "only titles released on or after"));
    since.title = t("subs.since_label", "only titles released on or after");
    submit.textContent = t("subs.follow", "Follow");
    empty.textContent = t("subs.empty", "Nothing followed yet.");
  }
  label();
  if (i18n.onChange) i18n.onChange(() => { label(); render(); });

  // -- data ---------------------------------------------------------------------------------

  let items = [];

  async function load() {
    const { status, body } = await api("api/subscriptions");
    if (status === 200 && body && Array.isArray(body.data)) items = body.data;
    render();
  }

  function lastResult(s) {
    const c = s.last_check_record;
    if (!c) return t("subs.not_checked", "not checked yet");
    if (c.errors && c.errors.length) return t("subs.check_error", "error: {message}", { message: c.errors[0] });
    return t("subs.check_result", "pages read: {pages}, queued: {queued}", {
      pages: String(c.pages), queued: String(Object.keys(c.queued || {}).length) });
  }

  function render() {
    list.replaceChildren(...items.map((s) => {
      const li = el("li", s.last_check_record && s.last_check_record.errors.length ? "failing" : "");
      li.dataset.id = s.id;
      const what = el("div", "subs-what");
      what.append(el("b", "", s.name || s.key), el("span", "muted", " · " + kindName(s.kind) + " · " +
        (s.action === "download" ? t("subs.action_download", "Download") : t("subs.action_metadata", "Metadata only"))));
      const when = el("div", "subs-when muted", lastResult(s) + (s.last_check
        ? " · " + t("subs.checked", "checked {when}", { when: ago(s.last_check) }) : ""));
      const buttons = el("div", "subs-buttons");
      const check = el("button", "ghost small", t("subs.check_now", "Check now"));
      check.type = "button";
      check.addEventListener("click", () => act(s, "POST", `api/subscriptions/${enc(s.id)}/check`,
                                                t("subs.check_queued", "a worker checks it shortly")));
      const drop = el("button", "ghost small danger", t("subs.unfollow", "Unfollow"));
      drop.type = "button";
      drop.addEventListener("click", () => {
        if (confirm(t("subs.confirm_unfollow", "Stop following {name}?", { name: s.name || s.key }))) {
          act(s, "DELETE", `api/subscriptions/${enc(s.id)}`, t("subs.unfollowed", "unfollowed"));
        }
      });
      buttons.append(check, drop);
      li.append(what, when, buttons);
      return li;
    }));
    empty.hidden = items.length > 0;
  }

  async function act(s, method, path, done) {
    const { status, body } = await api(path, { method });
    note(status < 300 ? done : (body && body.message) || t("subs.failed", "failed (HTTP {status})", { status: String(status) }),
         status < 300 ? "ok" : "error");
    load();
  }

  function note(message, kindOf) {
    const box = document.querySelector("#toasts");
    if (!box) return;
    const n = el("div", "toast " + kindOf, message);
    box.append(n);
    setTimeout(() => n.remove(), 5000);
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const payload = { kind: kind.value, id_or_query: key.value.trim(), action: action.value };
    if (backfill.value !== "") payload.backfill = Number(backfill.value);
    if (since.value) payload.filters = { since: since.value };
    const { status, body } = await api("api/subscriptions", { method: "POST", json: payload });
    if (status === 201) {
      key.value = "";
      note(t("subs.followed", "following {name}", { name: payload.id_or_query }), "ok");
    } else {
      note((body && body.message) || t("subs.failed", "failed (HTTP {status})", { status: String(status) }), "error");
    }
    load();
  });

  if (page.onEvent) {
    page.onEvent((m) => { if (m && m.type === "subscription_checked") load(); });
  }
  load();
  setInterval(load, 60000);
})();
