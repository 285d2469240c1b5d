// The record feed: let htmx swap 422 answers (forms with errors) and keep one
// composer tab open at a time, and jump from a reply to the message it answers.
// Everything else is htmx attributes in the templates.
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
  // "In reply to ...": jump to the parent when it is on the page (the link's own
  // href loads a page long enough to show it otherwise).
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.feed-reply-to");
    if (!link) return;
    var parent = document.getElementById(link.dataset.parent);
    if (!parent) return;
    event.preventDefault();
    if (location.hash === "#" + parent.id) {
      parent.scrollIntoView({ block: "center" });
    } else {
      location.hash = parent.id;
    }
    parent.classList.remove("feed-flash");
    void parent.offsetWidth; // restart the highlight on a second click
    parent.classList.add("feed-flash");
  });
})();
