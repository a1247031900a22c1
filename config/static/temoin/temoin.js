// Issue 20: on a phone the recordings list starts with the recordings, the filters folded behind
// their button (still open when a filter is in use, so what narrows the list stays visible).
document.addEventListener("DOMContentLoaded", function () {
  if (!window.matchMedia("(max-width: 640px)").matches) return;
  document.querySelectorAll("details.filters-box[data-fold-on-phone]").forEach(function (box) {
    box.open = false;
  });
});

// On a phone the wide tables that are not cards scroll sideways inside themselves: a keyboard user
// reaches them with Tab and scrolls them with the arrow keys (WCAG 2.1.1).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("main table:not(.cards)").forEach(function (table) {
    if (table.scrollWidth > table.clientWidth + 1 && !table.hasAttribute("tabindex")) {
      table.setAttribute("tabindex", "0");
      var caption = table.previousElementSibling;
      table.setAttribute("aria-label", caption && /^H[1-6]$/.test(caption.tagName) ? caption.textContent.trim() : "Tableau");
    }
  });
});
