// Small progressive enhancements. Pages work without this file.
(function () {
  "use strict";
  // Ask before destructive actions: <button data-confirm="...">
  document.addEventListener("submit", function (ev) {
    var btn = ev.submitter;
    var msg = btn && btn.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); ev.stopPropagation(); }
  }, true);
  // After an htmx swap in the page, close the mobile menu (not for the header's own refreshes, such as
  // the unread badge polling every 30 s, which would shut a menu the user just opened).
  document.addEventListener("htmx:afterSwap", function (ev) {
    var menu = document.getElementById("nav-menu");
    var src = ev.detail && (ev.detail.elt || ev.detail.target);
    if (!menu || !src) { return; }
    // an outerHTML swap detaches the old element: recognise the header's elements by their marker too
    if (src.hasAttribute("data-header") || (src.closest && src.closest(".topbar"))) { return; }
    menu.removeAttribute("open");
  });
})();
