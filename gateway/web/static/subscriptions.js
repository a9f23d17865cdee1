// nassav web page: the Subscriptions panel (follow an actress, a maker, a label, a series, a
// director or a search with any of the API's filters and settings; see each one's filters and
// last checks; check now; unfollow). A refused request's message (a 400 names the field and its
// accepted form) is shown beside that field. It sits in the side
// column and refreshes when a subscription_checked event arrives on the page's connection.
// Uses what app.js shares in window.nassavPage.
"use strict";

(() => {
  const page = window.nassavPage;
  if (!page) return; // app.js did not start: nothing to attach to
  const { api, el, ago } = page;
  const i18n = window.nassavI18n || {};
  const side = document.querySelector("aside.side");
  if (!side) return;
  const KINDS = ["actress", "maker", "label", "series", "director", "search"];
  const enc = encodeURIComponent;

  const kindName = (k) => ({
    actress: t("subs.kind_actress", "Actress"), maker: t("subs.kind_maker", "Maker"),
    label: t("subs.kind_label", "Label"), series: t("subs.kind_series", "Series"),
    director: t("subs.kind_director", "Director"), search: t("subs.kind_search", "Search"),
  })[k] || k;

  // -- the panel (built once, its words set again when the language changes) --------------

  const EDITIONS = ["C", "UC", "U", "regular"];
  const panel = el("section", "panel subs-panel");
  panel.id = "subs-panel";
  panel.setAttribute("aria-labelledby", "subs-title");
  const head = el("div", "panel-head");
  const title = el("h2");
  title.id = "subs-title";
  head.append(title);
  const form = el("form", "subs-form");
  form.autocomplete = "off";
  form.noValidate = true; // the API says what is wrong, beside the field (one source of rules)

  // Each field sits in a cell with a place for the API's message about it; `field` is the name
  // the API's 400 gives in data.field.
  const cells = new Map();
  function cell(field, control, wide) {
    const c = el("div", "subs-field" + (wide ? " wide" : ""));
    c.dataset.field = field;
    const err = el("small", "field-error");
    err.hidden = true;
    c.append(control, err);
    cells.set(field, { cell: c, err, control });
    return c;
  }
  function input(name, type) {
    const i = el("input");
    i.name = name;
    if (type) i.type = type;
    return i;
  }

  const kind = el("select");
  kind.name = "kind";
  const key = input("id_or_query");
  key.required = true;
  key.maxLength = 100;
  const action = el("select");
  action.name = "action";
  const backfill = input("backfill", "number");
  backfill.min = "0";
  backfill.max = "10000";
  const since = input("since", "date");
  const name = input("name");
  name.maxLength = 200;
  const interval = input("interval_min", "number"); // minutes here, interval_s (seconds) to the API
  interval.min = "1";
  interval.step = "any";
  const genres = input("skip_genres");
  const regex = input("title_regex");
  regex.maxLength = 200;
  const editions = el("fieldset", "subs-editions");
  const editionsLegend = el("legend");
  const editionBoxes = EDITIONS.map((e) => {
    const box = input("edition", "checkbox");
    box.value = e;
    const l = el("label", "subs-edition");
    l.append(box, el("span", "", e));
    return { box, l, e };
  });
  editions.append(editionsLegend, ...editionBoxes.map((b) => b.l));
  const more = el("details", "subs-more");
  const moreSummary = el("summary");
  const moreBody = el("div", "subs-more-body");
  moreBody.append(cell("name", name, true), cell("interval_s", interval), cell("filters.skip_genres", genres),
                  cell("filters.title_regex", regex, true), cell("filters.editions", editions, true));
  more.append(moreSummary, moreBody);
  const submit = el("button", "primary small");
  submit.type = "submit";
  form.append(cell("kind", kind), cell("id_or_query", key), cell("action", action), cell("backfill", backfill),
              cell("filters.since", since), more, submit);
  const list = el("ul", "subs");
  list.setAttribute("aria-live", "polite");
  const empty = el("p", "empty");
  panel.append(head, form, list, empty);
  side.append(panel);

  function label() {
    title.textContent = t("subs.title", "Subscriptions");
    kind.setAttribute("aria-label", t("subs.kind_label_field", "what to follow"));
    const chosenKind = kind.value || "actress";
    kind.replaceChildren(...KINDS.map((k) => {
      const o = el("option", "", kindName(k));
      o.value = k;
      return o;
    }));
    kind.value = chosenKind;
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
    moreSummary.textContent = t("subs.more", "More filters");
    name.placeholder = t("subs.name_placeholder", "a name to show (optional)");
    name.setAttribute("aria-label", t("subs.name_label", "a name to show"));
    interval.placeholder = t("subs.interval_placeholder", "check every N minutes");
    interval.setAttribute("aria-label", t("subs.interval_label", "minutes between checks"));
    genres.placeholder = t("subs.genres_placeholder", "skip genres, comma-separated");
    genres.setAttribute("aria-label", t("subs.genres_label", "skip titles with any of these genres"));
    regex.placeholder = t("subs.regex_placeholder", "title must match (regular expression)");
    regex.setAttribute("aria-label", t("subs.regex_label", "a regular expression the title must match"));
    editionsLegend.textContent = t("subs.editions_label", "only these editions (none: any)");
    editionBoxes.forEach(({ box, l, e }) => {
      l.lastChild.textContent = editionName(e);
      box.setAttribute("aria-label", editionName(e));
    });
    submit.textContent = t("subs.follow", "Follow");
    empty.textContent = t("subs.empty", "Nothing followed yet.");
  }
  // The edition's code stays as the API and the catalogues write it; only its meaning is translated.
  const editionName = (e) => ({
    C: t("subs.edition_c", "{code} (Chinese subtitles)", { code: "C" }),
    UC: t("subs.edition_uc", "{code} (uncensored leak)", { code: "UC" }),
    U: t("subs.edition_u", "{code} (uncensored)", { code: "U" }),
    regular: t("subs.edition_regular", "regular"),
  })[e] || e;
  label();
  if (i18n.onChange) i18n.onChange(() => { label(); render(); });

  // -- data ---------------------------------------------------------------------------------

  let items = [];
  const opened = new Map(); // id -> its last check records, for the rows whose checks are shown

  async function load() {
    const { status, body } = await api("api/subscriptions");
    if (status === 200 && body && Array.isArray(body.data)) items = body.data;
    await Promise.all([...opened.keys()].filter((id) => items.some((s) => s.id === id)).map(loadChecks));
    render();
  }

  async function loadChecks(id) {
    const { status, body } = await api(`api/subscriptions/${enc(id)}`);
    if (status === 200 && body && body.data) opened.set(id, body.data.checks || []);
  }

  function lastResult(s) {
    const c = s.last_check_record;
    if (!c) return t("subs.not_checked", "not checked yet");
    if (c.errors && c.errors.length) return t("subs.check_error", "error: {message}", { message: c.errors[0] });
    return t("subs.check_result", "pages read: {pages}, queued: {queued}", {
      pages: String(c.pages), queued: String(Object.keys(c.queued || {}).length) });
  }

  /** The subscription's filters and settings, in words ("since 2024-01-01 · skip: 旅行"). */
  function filtersText(s) {
    const f = s.filters || {};
    const parts = [];
    if (f.since) parts.push(t("subs.f_since", "since {date}", { date: f.since }));
    if (f.skip_genres && f.skip_genres.length) parts.push(t("subs.f_skip", "skip: {genres}", { genres: f.skip_genres.join(", ") }));
    if (f.editions && f.editions.length) parts.push(t("subs.f_editions", "editions: {editions}", { editions: f.editions.join(", ") }));
    if (f.title_regex) parts.push(t("subs.f_regex", "title ~ /{regex}/", { regex: f.title_regex }));
    if (s.backfill !== null && s.backfill !== undefined) parts.push(t("subs.f_backfill", "backfill {n}", { n: String(s.backfill) }));
    if (s.interval_s) parts.push(t("subs.f_interval", "every {minutes} min", { minutes: String(Math.round(s.interval_s / 6) / 10) }));
    if (!parts.length) parts.push(t("subs.f_none", "no filters"));
    return parts.join(" · ");
  }

  function checkLine(c) {
    const when = ago(c.ts);
    const text = t("subs.check_line", "{when}: {pages} pages, {new} new, {queued} queued, {skipped} skipped — {stopped}", {
      when, pages: String(c.pages), new: String((c.new || []).length), queued: String(Object.keys(c.queued || {}).length),
      skipped: String(Object.keys(c.skipped || {}).length), stopped: c.stopped || "" });
    const li = el("li", c.errors && c.errors.length ? "failing" : "", text);
    if (c.resumed && c.resumed.length) {
      li.append(el("div", "muted", t("subs.check_resumed", "finished what an interrupted check left: {avids}",
                                     { avids: c.resumed.join(", ") })));
    }
    for (const e of c.errors || []) li.append(el("div", "subs-error", e));
    return li;
  }

  function render() {
    list.replaceChildren(...items.map((s) => {
      const li = el("li", s.last_check_record && s.last_check_record.errors.length ? "failing" : "");
      li.dataset.id = s.id;
      const what = el("div", "subs-what");
      what.append(el("b", "", s.name || s.key), el("span", "muted", " · " + kindName(s.kind) + " · " +
        (s.action === "download" ? t("subs.action_download", "Download") : t("subs.action_metadata", "Metadata only"))));
      const filters = el("div", "subs-filters muted", filtersText(s));
      const when = el("div", "subs-when muted", lastResult(s) + (s.last_check
        ? " · " + t("subs.checked", "checked {when}", { when: ago(s.last_check) }) : "") +
        (s.pending ? " · " + t("subs.pending", "{n} waiting to be queued", { n: String(s.pending) }) : ""));
      const checks = el("details", "subs-checks");
      checks.open = opened.has(s.id);
      const summary = el("summary", "", t("subs.last_checks", "Last checks"));
      const records = el("ul", "subs-records");
      const shown = opened.get(s.id);
      if (shown) {
        records.replaceChildren(...(shown.length ? shown.map(checkLine)
                                                 : [el("li", "muted", t("subs.not_checked", "not checked yet"))]));
      }
      checks.append(summary, records);
      checks.addEventListener("toggle", async () => {
        if (!checks.open) { opened.delete(s.id); return; }
        if (opened.has(s.id)) return;
        await loadChecks(s.id);
        render();
      });
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
      li.append(what, filters, when, checks, buttons);
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

  function clearErrors() {
    for (const { cell: c, err, control } of cells.values()) {
      err.hidden = true;
      err.textContent = "";
      c.classList.remove("invalid");
      control.removeAttribute("aria-invalid");
    }
  }

  /** Show the API's message beside the field it names; false when no field of the form has it. */
  function fieldError(field, message) {
    const f = cells.get(field);
    if (!f) return false;
    if (f.cell.closest("details")) f.cell.closest("details").open = true;
    f.err.textContent = message;
    f.err.hidden = false;
    f.cell.classList.add("invalid");
    f.control.setAttribute("aria-invalid", "true");
    return true;
  }

  /** The request as the API takes it; only what the user set (the rest keeps the config's defaults). */
  function request() {
    const payload = { kind: kind.value, id_or_query: key.value.trim(), action: action.value };
    // Numbers the browser cannot read (e.g. "1e") go as they are: the API names the accepted form.
    const num = (i) => (i.validity && i.validity.badInput ? i.value || "?" : Number(i.value));
    if (backfill.value !== "" || (backfill.validity && backfill.validity.badInput)) payload.backfill = num(backfill);
    if (interval.value !== "" || (interval.validity && interval.validity.badInput)) {
      const minutes = num(interval);
      payload.interval_s = typeof minutes === "number" ? Math.round(minutes * 60) : minutes;
    }
    if (name.value.trim()) payload.name = name.value.trim();
    const filters = {};
    if (since.value) filters.since = since.value;
    const skip = genres.value.split(/[,，、\n]/).map((g) => g.trim()).filter(Boolean);
    if (skip.length) filters.skip_genres = skip;
    const chosen = editionBoxes.filter((b) => b.box.checked).map((b) => b.e);
    if (chosen.length) filters.editions = chosen;
    if (regex.value) filters.title_regex = regex.value;
    if (Object.keys(filters).length) payload.filters = filters;
    return payload;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearErrors();
    const payload = request();
    const { status, body } = await api("api/subscriptions", { method: "POST", json: payload });
    if (status === 201) {
      form.reset();
      more.open = false;
      note(t("subs.followed", "following {name}", { name: payload.id_or_query }), "ok");
    } else {
      let message = (body && body.message) || t("subs.failed", "failed (HTTP {status})", { status: String(status) });
      const field = status === 400 && body && body.data && body.data.field;
      // The API speaks of seconds; this form's field takes minutes.
      if (field === "interval_s") message += ` (${t("subs.interval_minutes", "here in minutes: 1 to 43200")})`;
      if (!field || !fieldError(field, message)) note(message, "error");
    }
    load();
  });

  if (page.onEvent) {
    page.onEvent((m) => { if (m && m.type === "subscription_checked") load(); });
  }
  load();
  setInterval(load, 60000);
})();
