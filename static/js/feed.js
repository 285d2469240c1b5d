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
  // Feedback on the panel's forms: the button says what is happening and cannot
  // be pressed twice (hx-disabled-elt), uploads show their progress, and an answer
  // that is not a form (400 for a request too large, 403, 500, no network) is
  // told next to the form instead of leaving it silently unchanged.
  var REASONS = {
    400: "The server refused this request: it is malformed or too large (a field or the files exceed the size limit).",
    403: "You may not do this on this record.",
    404: "This record or item no longer exists.",
    413: "The request is too large: send fewer or smaller files.",
    429: "Too many requests: wait a moment and try again.",
  };
  function formOf(event) {
    var elt = event.detail && event.detail.elt;
    return elt && elt.closest ? elt.closest("form") : null;
  }
  function showError(form, text) {
    var box = form && form.querySelector(".form-error");
    if (!box) {
      var panel = document.getElementById("feed-panel");
      if (!panel) return;
      box = panel.querySelector(":scope > .feed-error");
      if (!box) {
        box = document.createElement("p");
        box.className = "form-error feed-error";
        box.setAttribute("role", "alert");
        panel.insertBefore(box, panel.firstChild);
      }
    }
    box.textContent = text;
    box.hidden = false;
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = formOf(event);
    if (!form) return;
    var box = form.querySelector(".form-error");
    if (box) box.hidden = true;
    var button = form.querySelector("button[type=submit][data-busy]");
    if (button) {
      button.dataset.idle = button.textContent;
      button.textContent = button.dataset.busy;
      button.setAttribute("aria-busy", "true");
    }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = formOf(event);
    if (!form) return;
    var button = form.querySelector("button[type=submit][data-busy]");
    if (button && button.dataset.idle) {
      button.textContent = button.dataset.idle;
      button.removeAttribute("aria-busy");
    }
    var bar = form.querySelector(".upload-progress");
    if (bar) bar.hidden = true;
  });
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = formOf(event);
    var bar = form && form.querySelector(".upload-progress");
    if (!bar || !event.detail.lengthComputable || !event.detail.total) return;
    if (!form.querySelector("input[type=file]") || !form.querySelector("input[type=file]").files.length) return;
    bar.hidden = false;
    bar.value = Math.round((100 * event.detail.loaded) / event.detail.total);
    bar.textContent = bar.value + "%";
  });
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    var text = REASONS[status] || (status >= 500
      ? "The server failed (" + status + "). Nothing was lost: try again in a moment."
      : "The request failed (" + status + ").");
    showError(formOf(event), text);
  });
  document.addEventListener("htmx:sendError", function (event) {
    showError(formOf(event), "The server could not be reached. Check your connection and try again.");
  });
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
