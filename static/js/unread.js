// The top bar's unread inbox count: asked again every minute and whenever the tab
// comes back into view, so a new notification shows without reloading the page.
// A failed request (offline, logged out) keeps the last count shown.
(function () {
  "use strict";
  var link = document.querySelector("a.inbox-link[data-unread-url]");
  var badge = document.getElementById("unread-count");
  if (!link || !badge) return;
  var EVERY_MS = 60000;
  var pending = false;
  function show(count) {
    badge.textContent = String(count);
    badge.hidden = count === 0;
  }
  function refresh() {
    if (document.hidden || pending) return;
    pending = true;
    fetch(link.dataset.unreadUrl, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        // Logged out meanwhile: the login page answers instead (redirected).
        if (!response.ok || response.redirected) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (data) {
        if (typeof data.unread === "number") show(data.unread);
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
