// The live feed: every few seconds, ask whether the record's feed changed (a new
// message, a delivery state) and, only then, swap in its first page. The server
// answers 304 Not Modified to the stamp the page has (If-None-Match), so an
// unchanged feed costs two small indexed queries and no rendering.
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
    // Older pages loaded by hand stay until the reader reloads.
    if (box.dataset.olderLoaded) return;
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
          box.innerHTML = html;
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
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.elt;
    if (target && target.closest && target.closest("#feed-messages") && target.id !== "feed-messages") {
      var box = document.getElementById("feed-messages");
      if (box) box.dataset.olderLoaded = "1";
    }
  });
  setInterval(tick, EVERY_MS);
  document.addEventListener("visibilitychange", tick);
})();
