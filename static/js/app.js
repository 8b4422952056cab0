// Small progressive enhancements. Pages work without this file.
(function () {
  "use strict";
  // Ask before destructive actions: <button data-confirm="...">
  document.addEventListener("submit", function (ev) {
    var btn = ev.submitter;
    var msg = btn && btn.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); ev.stopPropagation(); }
  }, true);
  // After an htmx swap, close the mobile menu.
  document.addEventListener("htmx:afterSwap", function () {
    var menu = document.getElementById("nav-menu");
    if (menu) { menu.removeAttribute("open"); }
  });
})();
