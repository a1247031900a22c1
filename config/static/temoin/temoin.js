// Issue 20: on a phone the recordings list starts with the recordings, the filters folded behind
// their button (still open when a filter is in use, so what narrows the list stays visible).
document.addEventListener("DOMContentLoaded", function () {
  if (!window.matchMedia("(max-width: 640px)").matches) return;
  document.querySelectorAll("details.filters-box[data-fold-on-phone]").forEach(function (box) {
    box.open = false;
  });
});
