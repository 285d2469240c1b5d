// Relative dates stay true on a page left open (the live feed): every 30 seconds
// each <time data-relative> is written again from its datetime, in the words the
// server uses (knowlix/templatetags/knowlix_dates.py): "just now" within a minute,
// else one unit, "3 hours ago" or "in 2 days". The exact date stays in the title.
(function () {
  "use strict";
  var UNITS = [
    ["year", 365 * 86400], ["month", 30 * 86400], ["week", 7 * 86400],
    ["day", 86400], ["hour", 3600], ["minute", 60],
  ];
  function words(seconds) {
    var ago = seconds >= 0;
    seconds = Math.abs(seconds);
    if (seconds < 60) return "just now";
    for (var i = 0; i < UNITS.length; i++) {
      var n = Math.floor(seconds / UNITS[i][1]);
      if (n >= 1) {
        var text = n + "\u00a0" + UNITS[i][0] + (n === 1 ? "" : "s");
        return ago ? text + " ago" : "in " + text;
      }
    }
    return "just now";
  }
  function refresh() {
    var now = Date.now();
    document.querySelectorAll("time[data-relative][datetime]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(at)) el.textContent = words((now - at) / 1000);
    });
  }
  setInterval(refresh, 30000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) refresh();
  });
})();
