// Clock-in with browser location, only where the company enabled it and the employee consented
// (the form then carries data-geo="1"). Without a position the punch is sent without one: the server
// decides (office network, out-of-office with a note). Pages work without this file.
(function () {
  "use strict";
  function locate(form, done) {
    if (!form.hasAttribute("data-geo") || !navigator.geolocation) { done(); return; }
    var finished = false;
    function finish() { if (!finished) { finished = true; done(); } }
    navigator.geolocation.getCurrentPosition(function (pos) {
      form.elements.latitude.value = pos.coords.latitude;
      form.elements.longitude.value = pos.coords.longitude;
      form.elements.accuracy.value = Math.round(pos.coords.accuracy || 0);
      finish();
    }, finish, { enableHighAccuracy: true, timeout: 8000, maximumAge: 30000 });
    setTimeout(finish, 9000);
  }
  document.addEventListener("htmx:confirm", function (ev) {
    var form = ev.detail.elt;
    if (!form || !form.matches || !form.matches("form.att-clock[data-geo]")) { return; }
    if (form.elements.latitude.value) { return; }
    var submitter = ev.detail.triggeringEvent && ev.detail.triggeringEvent.submitter;
    if (submitter && submitter.name === "kind" && !form.querySelector("input[data-kind]")) {
      var hidden = document.createElement("input");
      hidden.type = "hidden"; hidden.name = "kind"; hidden.value = submitter.value;
      hidden.setAttribute("data-kind", "1");
      form.appendChild(hidden);
    }
    ev.preventDefault();
    locate(form, function () { ev.detail.issueRequest(true); });
  });
})();
