"use strict";
// Builds the review page from the JSON block above. Every text goes in through textContent or
// text nodes, never as HTML: report text and values are data, whatever they contain.
(() => {
  const data = JSON.parse(document.getElementById("review-data").textContent);
  const records = data.records;
  const state = records.map(() => ({ edits: {}, reviewed: false }));
  const app = document.getElementById("app");
  let unsaved = false;

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "on") for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  const colour = (name) => "f" + data.fields.indexOf(name);
  const flagged = (record, prefix) => record.flags.filter((flag) => flag.startsWith(prefix)).map((flag) => flag.slice(prefix.length));
  const reviewable = (record) => record.status === "ok" && record.text !== null;
  const edited = (index) => Object.keys(state[index].edits).length > 0;

  function valueOf(index, field) {
    const edit = state[index].edits[field.name];
    return edit === undefined ? field.value : edit;
  }

  function correctedSummary(index) {
    const summary = {};
    for (const name of data.fields) {
      const field = records[index].fields.find((f) => f.name === name);
      const value = valueOf(index, field).trim();
      summary[name] = value === "" ? data.na : value;
    }
    return summary;
  }

  function notify(message) {
    for (const node of document.querySelectorAll(".save-status")) node.textContent = message;
  }

  // Save: the reviewed records, as ELMTEX JSONL, downloaded through a Blob (no server, works from file://).
  function save() {
    const chosen = records.map((_, index) => index).filter((index) => state[index].reviewed && reviewable(records[index]));
    if (chosen.length === 0) {
      notify("Nothing saved: tick “Reviewed” on each record you have checked. Only reviewed records are saved.");
      return;
    }
    const lines = chosen.map(
      (index) => JSON.stringify({ id: records[index].id, report: records[index].text, summary: correctedSummary(index) }) + "\n",
    );
    const url = URL.createObjectURL(new Blob(lines, { type: "application/x-ndjson" }));
    const link = el("a", { href: url, download: data.download });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    unsaved = false;
    notify(`Saved ${chosen.length} reviewed record(s) as ${data.download} (your downloads folder).`);
  }

  window.addEventListener("beforeunload", (event) => {
    if (unsaved) event.preventDefault();
  });

  function saveBar() {
    return el(
      "span",
      { class: "filters" },
      el("button", { class: "primary", id: "save", on: { click: save } }, "Save corrections"),
      el("span", { class: "save-status notice", role: "status" }),
    );
  }

  function checkbox(id, label, onChange) {
    const box = el("input", { type: "checkbox", id, on: { change: (event) => onChange(event.target.checked) } });
    return el("label", { for: id }, box, " " + label);
  }

  function markChips(record) {
    const chips = [];
    for (const name of flagged(record, "check:")) chips.push(el("span", { class: "chip check" }, "check " + name));
    for (const name of flagged(record, "ungrounded:")) chips.push(el("span", { class: "chip ungrounded" }, "ungrounded " + name));
    for (const flag of record.flags) {
      if (!flag.startsWith("check:") && !flag.startsWith("ungrounded:")) chips.push(el("span", { class: "chip" }, flag));
    }
    return chips;
  }

  // The batch: one row per record, filters for records with fields to check or ungrounded items.
  function listView() {
    const only = { check: false, ungrounded: false };
    const rows = records.map((record, index) => {
      const row = el(
        "tr",
        { "data-record": index, on: { click: () => (location.hash = "#" + index) } },
        el("td", {}, String(index + 1)),
        el("td", {}, record.id),
        el("td", {}, record.status === "ok" ? (record.text === null ? "text not found" : "ok") : "failed"),
        el("td", {}, ...markChips(record)),
        el(
          "td",
          {},
          state[index].reviewed ? el("span", { class: "chip reviewed" }, "reviewed") : null,
          edited(index) ? el("span", { class: "chip edited" }, "edited") : null,
        ),
        el("td", {}, el("a", { href: record.page, on: { click: (event) => event.stopPropagation() } }, "own page")),
      );
      return { row, record };
    });
    const apply = () => {
      for (const { row, record } of rows) {
        const hide =
          (only.check && flagged(record, "check:").length === 0) ||
          (only.ungrounded && flagged(record, "ungrounded:").length === 0);
        row.classList.toggle("hidden", hide);
      }
    };
    const filter = (key) => (checked) => {
      only[key] = checked;
      apply();
    };
    return [
      el(
        "header",
        {},
        el("h1", {}, data.title),
        el("span", { class: "muted" }, `${records.length} record(s)`),
        el(
          "span",
          { class: "filters" },
          checkbox("only-check", "only records with fields to check", filter("check")),
          checkbox("only-ungrounded", "only records with ungrounded items", filter("ungrounded")),
        ),
        el("span", { class: "spacer" }),
        saveBar(),
      ),
      el("p", { class: "muted hint" }, "Open a record to review it; tick “Reviewed” on each record you have checked, then Save corrections."),
      el(
        "table",
        { class: "list" },
        el("thead", {}, el("tr", {}, ...["#", "record", "status", "marks", "review", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...rows.map(({ row }) => row)),
      ),
    ];
  }

  function reportText(record) {
    const pre = el("pre", { class: "report-text", id: "report-text" });
    let at = 0;
    for (const mark of record.marks) {
      if (mark.start > at) pre.append(record.text.slice(at, mark.start));
      const first = mark.items[0].split(":")[0];
      pre.append(
        el(
          "mark",
          { class: colour(first) + (mark.items.length > 1 ? " multi" : ""), "data-items": mark.items.join(" "), title: mark.items.join(", ") },
          record.text.slice(mark.start, mark.end),
        ),
      );
      at = mark.end;
    }
    pre.append(record.text.slice(at));
    return pre;
  }

  function marksOf(key) {
    return document.querySelectorAll(`mark[data-items~="${CSS.escape(key)}"]`);
  }

  function fieldRow(index, field) {
    const record = records[index];
    const row = el("div", { class: "field", "data-field": field.name, "data-check": field.check, "data-ungrounded": field.ungrounded });
    const changed = () => {
      const value = input.value;
      if (value === field.value) delete state[index].edits[field.name];
      else state[index].edits[field.name] = value;
      row.classList.toggle("edited", value !== field.value);
      unsaved = true;
    };
    const id = "value-" + field.name;
    const input =
      field.name === "gender"
        ? el("select", { id, on: { change: changed } }, ...data.genders.map((g) => el("option", { value: g }, g)))
        : el("textarea", { id, maxlength: field.max_chars, rows: Math.min(8, Math.max(1, Math.ceil(field.value.length / 60))), on: { input: changed } });
    input.value = valueOf(index, field);
    input.disabled = !reviewable(record);
    row.classList.toggle("edited", input.value !== field.value);
    const confidence = field.confidence === null ? null : el("span", { class: "confidence" }, `confidence ${Math.round(field.confidence * 100)}%`);
    row.append(
      el(
        "div",
        { class: "field-head" },
        el("span", { class: "swatch " + colour(field.name) }),
        el("label", { for: id }, field.name),
        confidence,
        field.check ? el("span", { class: "chip check" }, "check") : null,
        field.ungrounded ? el("span", { class: "chip ungrounded" }, "ungrounded") : null,
      ),
      input,
    );
    const items = field.evidence.map((entry, n) => {
      const key = `${field.name}:${n}`;
      const how = entry.match === "fuzzy" ? `fuzzy ${entry.score}` : entry.match === "none" ? "not found in the report" : "exact";
      return el(
        "li",
        {
          class: "match-" + entry.match,
          "data-item": key,
          on: {
            click: () => {
              const found = marksOf(key);
              if (found.length === 0) return;
              found[0].scrollIntoView({ block: "center", behavior: "smooth" });
              for (const mark of found) {
                mark.classList.add("flash");
                setTimeout(() => mark.classList.remove("flash"), 1200);
              }
            },
          },
        },
        el("span", { class: "swatch " + colour(field.name) }),
        el("span", {}, entry.item),
        el("span", { class: "match" }, how),
      );
    });
    if (items.length) row.append(el("ul", { class: "items" }, ...items));
    row.addEventListener("mouseenter", () => document.querySelectorAll(`mark[data-items*="${CSS.escape(field.name)}:"]`).forEach((m) => m.classList.add("focus")));
    row.addEventListener("mouseleave", () => document.querySelectorAll("mark.focus").forEach((m) => m.classList.remove("focus")));
    return row;
  }

  // One record: its report with every located item marked in its field's colour, the fields beside it.
  function recordView(index) {
    const record = records[index];
    const only = { check: false, ungrounded: false };
    const rows = record.fields.map((field) => fieldRow(index, field));
    const apply = () => {
      record.fields.forEach((field, n) => rows[n].classList.toggle("hidden", (only.check && !field.check) || (only.ungrounded && !field.ungrounded)));
    };
    const filter = (key) => (checked) => {
      only[key] = checked;
      apply();
    };
    const nav =
      data.mode === "index"
        ? el(
            "span",
            { class: "filters" },
            el("a", { class: "button", href: "#" }, "All records"),
            index > 0 ? el("a", { class: "button", href: "#" + (index - 1) }, "Previous") : null,
            index < records.length - 1 ? el("a", { class: "button", href: "#" + (index + 1) }, "Next") : null,
          )
        : el("a", { class: "button", href: data.index }, "All records");
    const banners = [];
    if (record.error) banners.push(el("p", { class: "banner" }, "No record: " + record.error));
    if (record.text_problem) {
      banners.push(el("p", { class: "banner", id: "text-problem" }, "The report text is not shown, and this record cannot be saved as a correction: " + record.text_problem + "."));
    }
    const reviewed = el("input", {
      type: "checkbox",
      id: "reviewed",
      disabled: !reviewable(record),
      on: {
        change: (event) => {
          state[index].reviewed = event.target.checked;
          unsaved = true;
        },
      },
    });
    reviewed.checked = state[index].reviewed;
    return [
      el("header", {}, el("h1", {}, record.id), el("span", { class: "muted" }, record.source + " · " + record.model), ...markChips(record), el("span", { class: "spacer" }), nav, saveBar()),
      ...banners,
      el(
        "div",
        { class: "columns" },
        el("section", { class: "pane report" }, el("h2", {}, "Report"), record.text === null ? el("p", { class: "muted" }, "(not shown)") : reportText(record)),
        el(
          "section",
          { class: "pane" },
          el(
            "h2",
            {},
            "Fields",
            el(
              "span",
              { class: "filters" },
              checkbox("only-check-fields", "only fields to check", filter("check")),
              checkbox("only-ungrounded-fields", "only ungrounded", filter("ungrounded")),
            ),
          ),
          ...rows,
          el("label", { class: "reviewed-box", for: "reviewed" }, reviewed, " Reviewed: every field checked against the report (only reviewed records are saved)"),
        ),
      ),
    ];
  }

  function show() {
    const index = Number.parseInt(location.hash.slice(1), 10);
    const view = data.mode === "record" ? recordView(0) : index >= 0 && index < records.length ? recordView(index) : listView();
    app.replaceChildren(...view);
    window.scrollTo(0, 0);
  }

  window.addEventListener("hashchange", show);
  show();
})();
