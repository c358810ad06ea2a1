/* MedForge web UI: small progressive enhancements. Every page works without this file
   (meta refresh / plain links); with it, live parts update in place.

   - [data-poll-url]: fetch that URL every [data-poll-interval] ms and replace the element's
     content with the returned HTML fragment; stops once the fragment carries [data-final].
   - [data-copy="#id"]: copy the value of the element to the clipboard.
   - form[data-confirm]: ask before submitting (destructive actions).
   - [data-focus-on-load]: move focus there (error summaries), so screen readers announce it. */
(function () {
  "use strict";

  function poll(el) {
    var url = el.getAttribute("data-poll-url");
    var interval = parseInt(el.getAttribute("data-poll-interval") || "1500", 10);
    var failures = 0;
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
        .then(function (resp) {
          if (!resp.ok) { throw new Error("HTTP " + resp.status); }
          return resp.text();
        })
        .then(function (html) {
          failures = 0;
          el.innerHTML = html;
          el.setAttribute("data-updated", String(Date.now()));
          if (el.querySelector("[data-final]")) {
            el.removeAttribute("data-polling");
            document.dispatchEvent(new CustomEvent("medforge:final", { detail: el }));
            return;
          }
          window.setTimeout(tick, interval);
        })
        .catch(function () {
          // Back off on errors (server restarting, network blip), but keep trying.
          failures += 1;
          window.setTimeout(tick, Math.min(interval * Math.pow(2, failures), 30000));
        });
    }
    el.setAttribute("data-polling", "1");
    window.setTimeout(tick, interval);
  }

  function init() {
    document.querySelectorAll("[data-poll-url]").forEach(function (el) {
      if (!el.querySelector("[data-final]")) { poll(el); }
    });
    document.querySelectorAll("[data-copy]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var src = document.querySelector(btn.getAttribute("data-copy"));
        if (!src) { return; }
        src.select();
        var done = function () { btn.textContent = "Copied"; };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(src.value).then(done, function () { document.execCommand("copy"); done(); });
        } else { document.execCommand("copy"); done(); }
      });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { ev.preventDefault(); }
      });
    });
    var focus = document.querySelector("[data-focus-on-load]");
    if (focus) { focus.focus(); }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); }
  else { init(); }
})();
