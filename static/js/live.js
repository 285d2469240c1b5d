// The live feed: every few seconds, ask whether the record's feed changed (a new
// message, a delivery state) and, only then, swap in its first page. The server
// answers 304 Not Modified to the stamp the page has (If-None-Match), so an
// unchanged feed costs one aggregate query and no rendering. With older pages
// loaded by hand, new messages go on top and the older pages stay.
// The panel re-includes this file after each htmx swap: set up once only.
(function () {
  "use strict";
  if (window.knowlixLiveReady) return;
  window.knowlixLiveReady = true;
  var EVERY_MS = 3000;
  var pending = false;
  function tick() {
    var box = document.getElementById("feed-messages");
    if (!box || !box.dataset.liveUrl || document.hidden || pending) return;
    pending = true;
    var stamp = box.dataset.stamp || "";
    fetch(box.dataset.liveUrl, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { "If-None-Match": '"' + stamp + '"' },
    })
      .then(function (response) {
        if (response.status === 304 || !response.ok || response.redirected) return null;
        var etag = (response.headers.get("ETag") || "").replace(/"/g, "");
        return response.text().then(function (html) {
          var current = document.getElementById("feed-messages");
          if (!current || current !== box) return; // the panel was re-rendered
          if (box.dataset.olderLoaded) merge(box, html);
          else box.innerHTML = html;
          box.dataset.stamp = etag;
          if (window.htmx) htmx.process(box);
          document.dispatchEvent(new CustomEvent("knowlix:feed-updated"));
        });
      })
      .catch(function () {})
      .then(function () {
        pending = false;
      });
  }
  // With older pages loaded: update the messages shown and put new ones on top,
  // leaving the older pages in place.
  function merge(box, html) {
    var fresh = document.createElement("template");
    fresh.innerHTML = html;
    var first = box.querySelector("article.feed-message");
    fresh.content.querySelectorAll("article.feed-message").forEach(function (article) {
      var shown = document.getElementById(article.id);
      if (shown) {
        shown.replaceWith(article);
      } else if (first) {
        box.insertBefore(article, first);
      } else {
        box.prepend(article);
      }
    });
  }
  // "Load older messages" was asked for (a request from inside the list): keep
  // what the reader loaded rather than swap the first page back in.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail && event.detail.elt;
    var box = source && source.closest ? source.closest("#feed-messages") : null;
    if (box) box.dataset.olderLoaded = "1";
  });
  setInterval(tick, EVERY_MS);
  document.addEventListener("visibilitychange", tick);
})();
