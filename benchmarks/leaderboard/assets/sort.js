// Sortable tables of the leaderboard: every column header of a table.sortable holds a button;
// pressing it (click, Enter or Space) orders the rows by that column's data-v values (numbers
// first, missing values last), pressing again reverses the order. aria-sort tells screen readers.
(function () {
  "use strict";
  function key(cell) {
    if (!cell) { return null; }
    var v = cell.getAttribute("data-v");
    if (v === null || v === "") { return null; }
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function compare(a, b, dir) {
    if (a === null && b === null) { return 0; }
    if (a === null) { return 1; }
    if (b === null) { return -1; }
    if (typeof a === "number" && typeof b === "number") { return dir * (a - b); }
    a = String(a); b = String(b);
    return dir * (a < b ? -1 : (a > b ? 1 : 0));
  }
  function sortBy(table, col, button) {
    var th = button.parentNode;
    var dir = th.getAttribute("aria-sort") === "descending" ? 1 : -1;
    var heads = table.querySelectorAll("thead th");
    for (var i = 0; i < heads.length; i++) { heads[i].removeAttribute("aria-sort"); }
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var indexed = rows.map(function (row, i) { return [key(row.cells[col]), i, row]; });
    indexed.sort(function (x, y) { return compare(x[0], y[0], dir) || (x[1] - y[1]); });
    var frag = document.createDocumentFragment();
    indexed.forEach(function (t) { frag.appendChild(t[2]); });
    body.appendChild(frag);
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    var buttons = table.querySelectorAll("thead th button");
    Array.prototype.forEach.call(buttons, function (button) {
      var col = Number(button.getAttribute("data-col"));
      button.addEventListener("click", function () { sortBy(table, col, button); });
    });
  });
})();
