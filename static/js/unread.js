// The top bar's unread inbox count: asked again every few seconds and whenever
// the tab comes back into view, so a new notification shows without reloading
// the page. The server answers 304 Not Modified when the count is unchanged
// (If-None-Match). A failed request (offline, logged out) keeps the last count.
(function () {
  "use strict";
  var link = document.querySelector("a.inbox-link[data-unread-url]");
  var badge = document.getElementById("unread-count");
  if (!link || !badge) return;
  var EVERY_MS = 5000;
  var pending = false;
  function show(count) {
    badge.textContent = String(count);
    badge.hidden = count === 0;
    document.dispatchEvent(new CustomEvent("knowlix:unread", { detail: count }));
  }
  function refresh() {
    if (document.hidden || pending) return;
    pending = true;
    var shown = badge.textContent.trim() || "0";
    fetch(link.dataset.unreadUrl, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json", "If-None-Match": '"unread-' + shown + '"' },
    })
      .then(function (response) {
        if (response.status === 304) return null;
        // Logged out meanwhile: the login page answers instead (redirected).
        if (!response.ok || response.redirected) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) {
        if (data && typeof data.unread === "number") show(data.unread);
      })
      .catch(function () {})
      .then(function () {
        pending = false;
      });
  }
  setInterval(refresh, EVERY_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refresh();
  });
})();
