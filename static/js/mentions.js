// @mentions in the composer: typing "@" and a few letters lists colleagues by full
// name and user name (arrows, Enter or Tab to pick, Escape to close); the pick is
// written as @username, which notifies them. Names that are nobody's are flagged
// under the text before posting (the server refuses them too).
// The panel re-includes this file after each swap: set up once only.
(function () {
  "use strict";
  if (window.knowlixMentionsReady) return;
  window.knowlixMentionsReady = true;
  var TOKEN = /(^|[^\w.@])@([\w][\w.+-]*)?$/;
  var ALL = /(^|[^\w.@])@([\w][\w.+-]*[\w]|[\w])/g;
  var state = { box: null, list: null, items: [], index: 0, start: 0, timer: 0, seq: 0 };

  function urlOf(area) {
    var form = area.closest("form[data-people-url]");
    return form ? form.dataset.peopleUrl : "";
  }
  function close() {
    if (state.list) state.list.remove();
    state.list = null;
    state.items = [];
  }
  function render(area, people) {
    close();
    if (!people.length) return;
    var list = document.createElement("ul");
    list.className = "mention-list";
    list.setAttribute("role", "listbox");
    people.forEach(function (person, i) {
      var item = document.createElement("li");
      item.setAttribute("role", "option");
      item.dataset.username = person.username;
      var name = document.createElement("strong");
      name.textContent = person.name;
      var user = document.createElement("span");
      user.className = "muted";
      user.textContent = " @" + person.username;
      item.appendChild(name);
      item.appendChild(user);
      item.addEventListener("mousedown", function (event) {
        event.preventDefault();
        pick(area, i);
      });
      list.appendChild(item);
    });
    area.insertAdjacentElement("afterend", list);
    state.box = area;
    state.list = list;
    state.items = people;
    select(0);
  }
  function select(i) {
    if (!state.list) return;
    var n = state.items.length;
    state.index = (i + n) % n;
    Array.prototype.forEach.call(state.list.children, function (li, j) {
      li.setAttribute("aria-selected", j === state.index ? "true" : "false");
    });
  }
  function pick(area, i) {
    var person = state.items[i];
    if (!person) return;
    var caret = area.selectionStart;
    var text = area.value;
    var insert = "@" + person.username + " ";
    area.value = text.slice(0, state.start) + insert + text.slice(caret);
    var at = state.start + insert.length;
    area.setSelectionRange(at, at);
    close();
    area.focus();
    check(area);
  }
  function suggest(area) {
    var before = area.value.slice(0, area.selectionStart);
    var match = TOKEN.exec(before);
    var url = urlOf(area);
    if (!match || !url) return close();
    var query = match[2] || "";
    state.start = before.length - query.length - 1;
    var seq = ++state.seq;
    fetch(url + "?q=" + encodeURIComponent(query), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { people: [] }; })
      .then(function (data) {
        if (seq === state.seq) render(area, data.people || []);
      })
      .catch(close);
  }
  // Flag @names that are nobody's, under the text.
  function check(area) {
    var url = urlOf(area);
    if (!url) return;
    var names = [];
    var match;
    ALL.lastIndex = 0;
    while ((match = ALL.exec(area.value))) {
      if (names.indexOf(match[2]) === -1) names.push(match[2]);
    }
    var note = area.parentNode.querySelector(".mention-warning");
    if (!names.length) {
      if (note) note.hidden = true;
      return;
    }
    fetch(url + "?names=" + encodeURIComponent(names.join(",")), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        var unknown = names.filter(function (n) { return data.known.indexOf(n) === -1; });
        if (!note) {
          note = document.createElement("small");
          note.className = "mention-warning";
          note.setAttribute("role", "alert");
          area.parentNode.appendChild(note);
        }
        note.hidden = unknown.length === 0;
        note.textContent = unknown.length
          ? "Nobody is called " + unknown.map(function (n) { return "@" + n; }).join(", ") + ": pick a name from the list."
          : "";
      })
      .catch(function () {});
  }
  function isComposer(target) {
    return target && target.matches && target.matches("form[data-people-url] textarea");
  }
  document.addEventListener("input", function (event) {
    if (!isComposer(event.target)) return;
    var area = event.target;
    suggest(area);
    clearTimeout(state.timer);
    state.timer = setTimeout(function () { check(area); }, 400);
  });
  document.addEventListener("keydown", function (event) {
    if (!isComposer(event.target) || !state.list) return;
    if (event.key === "ArrowDown") select(state.index + 1);
    else if (event.key === "ArrowUp") select(state.index - 1);
    else if (event.key === "Enter" || event.key === "Tab") pick(event.target, state.index);
    else if (event.key === "Escape") close();
    else return;
    event.preventDefault();
  });
  document.addEventListener("focusout", function (event) {
    if (isComposer(event.target)) setTimeout(close, 150);
  });
})();
