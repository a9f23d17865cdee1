// nassav web page: "Import a collection" — a button under the add form opens a small form
// (folder, mode, dry run) that starts POST /api/library/import, follows the job's
// import_progress events on the page's connection with a progress bar, and lists at the end
// the files left where they were, with the reason. Uses what app.js shares in window.nassavPage.
"use strict";

(() => {
  const page = window.nassavPage;
  if (!page) return;
  const { api, el } = page;


  const open = el("button", "ghost small import-open", t("import.open", "Import a collection…"));
  open.type = "button";
  open.id = "import-open";
  const panel = document.querySelector(".add-panel");
  if (!panel) return;
  panel.append(open);

  const dialog = el("dialog", "import-dialog");
  dialog.id = "import-dialog";
  dialog.setAttribute("aria-labelledby", "import-title");
  const form = el("form");
  form.method = "dialog";
  const title = el("h2", "", t("import.title", "Import a collection"));
  title.id = "import-title";
  const explain = el("p", "", t("import.explain",
    "Files are identified by their names and placed in the library with their metadata; anything unidentified stays where it is."));
  const path = el("input");
  path.id = "import-path";
  path.required = true;
  path.placeholder = "/srv/old-collection"; // a path, the same in every language
  path.setAttribute("aria-label", t("import.path_label", "folder on the server"));
  const mode = el("select");
  mode.id = "import-mode";
  mode.setAttribute("aria-label", t("import.mode_label", "how files reach the library"));
  for (const [value, text] of [["move", t("import.mode_move", "Move")], ["hardlink", t("import.mode_hardlink", "Hard link")],
                               ["copy", t("import.mode_copy", "Copy")], ["in-place", t("import.mode_in_place", "Leave in place")]]) {
    const o = el("option", "", text);
    o.value = value;
    mode.append(o);
  }
  const dryLabel = el("label", "import-dry");
  const dry = el("input");
  dry.type = "checkbox";
  dry.id = "import-dry-run";
  dry.checked = true;
  dryLabel.append(dry, " ", t("import.dry_run", "Dry run (only show the plan)"));
  const bar = el("progress", "import-bar");
  bar.id = "import-bar";
  bar.max = 100;
  bar.value = 0;
  bar.hidden = true;
  const status = el("p", "import-status");
  status.id = "import-status";
  status.setAttribute("aria-live", "polite");
  const left = el("ul", "import-left");
  left.id = "import-left";
  const actions = el("div", "dialog-actions");
  const close = el("button", "ghost", t("import.close", "Close"));
  close.value = "cancel";
  close.formNoValidate = true;
  const start = el("button", "primary", t("import.start", "Start"));
  start.type = "button";
  start.id = "import-start";
  actions.append(close, start);
  form.append(title, explain, path, mode, dryLabel, bar, status, left, actions);
  dialog.append(form);
  document.body.append(dialog);

  let current = null; // the import id followed now
  // A small dry run can finish before its POST's answer reaches the page (the event comes on
  // the live connection, the answer on another): remember finishes of imports not yet followed.
  const finishedEarly = new Set();

  open.addEventListener("click", () => dialog.showModal());

  start.addEventListener("click", async () => {
    if (!path.value.trim()) { path.reportValidity(); return; }
    left.replaceChildren();
    bar.hidden = false;
    bar.value = 0;
    status.textContent = t("import.starting", "Starting…");
    start.disabled = true;
    finishedEarly.clear();
    const res = await api("api/library/import", { method: "POST",
      json: { path: path.value.trim(), mode: mode.value, dry_run: dry.checked } });
    if (res.status !== 202) {
      start.disabled = false;
      bar.hidden = true;
      status.textContent = t("import.refused", "Refused: {reason}",
        { reason: (res.body && res.body.message) || "HTTP " + res.status });
      return;
    }
    current = res.body.data.import_id;
    status.textContent = t("import.queued", "Queued; waiting for a worker…");
    if (finishedEarly.delete(current)) finished(current);
  });

  page.onEvent((m) => {
    const d = m.data || {};
    if (m.type === "import_finished" && d.import_id && d.import_id !== current) finishedEarly.add(d.import_id);
    if (!current || d.import_id !== current) return;
    if (m.type === "import_progress") {
      bar.value = d.percent || 0;
      status.textContent = t("import.progress", "{done} of {total} files", { done: d.done, total: d.total });
    } else if (m.type === "import_finished") {
      finished(current);
    }
  });

  async function finished(id) {
    start.disabled = false;
    bar.value = 100;
    const res = await api("api/library/import/" + encodeURIComponent(id));
    const data = res.body && res.body.data;
    if (!data) return;
    if (data.status !== "completed") {
      status.textContent = t("import.failed", "The import failed: {reason}", { reason: data.message });
      return;
    }
    const c = data.counts || {};
    const vars = { place: c.place || 0, done: c.done || 0,
                   other: (c.skipped || 0) + (c.conflict || 0) + (c.duplicate || 0) };
    status.textContent = data.dry_run
      ? t("import.planned", "Plan: {place} to import, {done} already there, {other} left where they are", vars)
      : t("import.done", "Imported {place}, {done} already there, {other} left where they are", vars);
    left.replaceChildren(...data.items.filter((i) => i.action !== "place" && i.action !== "done").map((i) => {
      const li = el("li");
      li.append(el("code", "", i.file), " — ", i.reason);
      return li;
    }));
    if (!data.dry_run) page.refreshLibrary();
  }
})();
