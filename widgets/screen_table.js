// The table of a live screen (nnp_lab.widgets.ScreenTable): hand-written, no dependencies.
// Python sends the rows to show (already sorted, at most max_rows); a click on a header asks
// Python to sort by that column (again: reverse), a click on a row selects it.

function format(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    const a = Math.abs(value);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? value.toExponential(4) : value.toFixed(4);
  }
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

function render({ model, el }) {
  el.classList.add("nnp-screen-table");
  const caption = document.createElement("div");
  caption.className = "nnp-screen-caption";
  const scroller = document.createElement("div");
  scroller.className = "nnp-screen-scroll";
  const table = document.createElement("table");
  scroller.appendChild(table);
  el.appendChild(caption);
  el.appendChild(scroller);

  function draw() {
    const columns = model.get("columns");
    const rows = model.get("rows");
    const sortBy = model.get("sort_by");
    const ascending = model.get("ascending");
    const selected = model.get("selected");
    const idColumn = columns.indexOf("row_id");
    const statusColumn = columns.indexOf("status");
    table.replaceChildren();
    const head = table.createTHead().insertRow();
    for (const name of columns) {
      const th = document.createElement("th");
      th.textContent = name + (name === sortBy ? (ascending ? " \u25b2" : " \u25bc") : "");
      th.dataset.column = name;
      th.title = `sort by ${name}`;
      th.addEventListener("click", () => {
        if (name === sortBy) model.set("ascending", !ascending);
        else {
          model.set("sort_by", name);
          model.set("ascending", true);
        }
        model.save_changes();
      });
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      const id = idColumn >= 0 ? row[idColumn] : -1;
      tr.dataset.rowId = String(id);
      if (statusColumn >= 0 && row[statusColumn] === "failed") tr.classList.add("failed");
      if (id === selected) tr.classList.add("selected");
      for (const value of row) tr.insertCell().textContent = format(value);
      tr.addEventListener("click", () => {
        model.set("selected", id);
        model.save_changes();
      });
    }
    const total = model.get("n_rows");
    caption.textContent =
      total === 0
        ? "no rows yet"
        : `${rows.length} of ${total} rows` +
          (sortBy ? `, sorted by ${sortBy} (${ascending ? "lowest" : "highest"} first)` : "") +
          " \u2014 click a header to sort, a row to view its structure";
    el.dataset.nRows = String(total);
    el.dataset.nShown = String(rows.length);
  }

  for (const name of ["columns", "rows", "sort_by", "ascending", "selected", "n_rows"]) {
    model.on(`change:${name}`, draw);
  }
  draw();
}

export default { render };
