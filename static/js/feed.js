// The record feed: let htmx swap 422 answers (forms with errors) and keep one
// composer tab open at a time. Everything else is htmx attributes in the templates.
// The panel re-includes this file after each swap: set up once only.
(function () {
  "use strict";
  if (window.knowlixFeedReady) return;
  window.knowlixFeedReady = true;
  if (window.htmx) {
    htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "422", swap: true, error: false },
      { code: "[45]..", swap: false, error: true },
    ];
  }
  document.addEventListener("toggle", function (event) {
    var opened = event.target;
    if (!opened.classList || !opened.classList.contains("feed-tab") || !opened.open) return;
    document.querySelectorAll(".feed-tab[open]").forEach(function (other) {
      if (other !== opened) other.open = false;
    });
  }, true);
})();
