// Exam countdown (training). The server is the authority on time: this only shows the time left and,
// when it runs out, submits the form once (answers are already saved one by one).
(function () {
  "use strict";
  var box = document.getElementById("exam-timer");
  var out = document.getElementById("exam-timer-value");
  var form = document.getElementById("exam-form");
  if (!box || !out || !form) { return; }
  var left = parseInt(box.getAttribute("data-seconds-left"), 10);
  if (isNaN(left)) { return; }
  var end = Date.now() + left * 1000;
  var sent = false;
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function tick() {
    var s = Math.max(0, Math.round((end - Date.now()) / 1000));
    out.textContent = Math.floor(s / 60) + ":" + pad(s % 60);
    if (s <= 60) { box.classList.add("urgent"); }
    if (s === 0 && !sent) {
      sent = true;
      var btn = document.getElementById("exam-submit");
      if (btn) { btn.removeAttribute("data-confirm"); }
      form.submit();
      return;
    }
    window.setTimeout(tick, 500);
  }
  tick();
})();
