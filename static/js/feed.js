// The record feed: let htmx swap 422 answers (forms with errors) and keep one
// composer tab open at a time, and link replies and the messages they answer.
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
  // Threads read both ways: a reply's "In reply to ..." link and, under each message,
  // links to its replies on the page (built here, so older pages loaded later count).
  function jumpTo(target) {
    if (location.hash === "#" + target.id) {
      target.scrollIntoView({ block: "center" });
    } else {
      location.hash = target.id;
    }
    target.classList.remove("feed-flash");
    void target.offsetWidth; // restart the highlight on a second click
    target.classList.add("feed-flash");
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.feed-reply-to, a.feed-reply-link");
    if (!link) return;
    var target = document.getElementById(link.dataset.target);
    if (!target) return; // not on the page: the href loads a page that shows it
    event.preventDefault();
    jumpTo(target);
  });
  // One line per message: "2 replies from Ready Mat, Marc Demo", each author once
  // (linked to their first reply), however many replies they wrote.
  function linkReplies() {
    var replies = document.querySelectorAll("article.feed-message[data-parent]");
    for (var i = replies.length - 1; i >= 0; i--) { // oldest first
      var reply = replies[i];
      var parent = document.getElementById(reply.dataset.parent);
      if (!parent) continue;
      var list = parent.querySelector(":scope > .feed-replies");
      if (!list) {
        list = document.createElement("div");
        list.className = "feed-replies";
        list.innerHTML = '<span class="feed-reply-arrow" aria-hidden="true">↩</span> <span class="feed-replies-label"></span> ';
        list.dataset.seen = "";
        parent.appendChild(list);
      }
      var seen = list.dataset.seen ? list.dataset.seen.split(" ") : [];
      if (seen.indexOf(reply.id) !== -1) continue;
      seen.push(reply.id);
      list.dataset.seen = seen.join(" ");
      var author = reply.querySelector("header strong");
      var name = author ? author.textContent.trim() : "someone";
      var known = Array.prototype.some.call(list.querySelectorAll("a.feed-reply-link"), function (a) {
        return a.textContent === name;
      });
      if (!known) {
        if (list.querySelector("a.feed-reply-link")) list.appendChild(document.createTextNode(", "));
        var link = document.createElement("a");
        link.className = "feed-reply-link";
        link.href = "#" + reply.id;
        link.dataset.target = reply.id;
        link.textContent = name;
        list.appendChild(link);
      }
      var count = seen.length;
      list.querySelector(".feed-replies-label").textContent = count === 1 ? "1 reply from" : count + " replies from";
    }
  }
  linkReplies();
  document.addEventListener("htmx:afterSettle", linkReplies);
  document.addEventListener("knowlix:feed-updated", linkReplies);
})();
