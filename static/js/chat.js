// Chat behaviours htmx can't express: Enter sends, the read cursor, keeping the newest message in
// view, and a board's "Ravi and Meera are typing…".
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function openConversation() {
    return document.querySelector(".conversation[data-read-url]");
  }

  // Seen = the conversation is open and the tab is visible: report the newest message from them.
  function reportRead() {
    var conv = openConversation();
    if (!conv || document.visibilityState !== "visible") return;
    var viewer = document.body.dataset.viewer;
    var theirs = conv.querySelectorAll('.messages .msg:not([data-author="' + viewer + '"])');
    if (!theirs.length) return;
    var last = Number(theirs[theirs.length - 1].dataset.key);
    if (!(last > Number(conv.dataset.lastRead || 0))) return;
    conv.dataset.lastRead = String(last);
    fetch(conv.dataset.readUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/x-www-form-urlencoded" },
      body: "up_to=" + encodeURIComponent(last),
    }).catch(function () { conv.dataset.lastRead = "0"; });
  }

  var stick = true;
  function messagesList() {
    var conv = openConversation();
    return conv && conv.querySelector(".messages");
  }
  function scrollToNewest() {
    var list = messagesList();
    if (list && stick) list.scrollTop = list.scrollHeight;
  }
  document.addEventListener("scroll", function (e) {
    var list = messagesList();
    if (list && e.target === list) stick = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }, true);

  // Board typing: the stream upserts one hidden item per typist; show them as one sentence and
  // drop each name 6 s after its last event (the same lifetime as a private chat's line).
  var TYPING_MS = 6000;
  var typingTimer = null;
  function typingSentence(names) {
    if (names.length === 1) return names[0] + " is typing…";
    if (names.length <= 3) return names.slice(0, -1).join(", ") + " and " + names[names.length - 1] + " are typing…";
    return names.slice(0, 2).join(", ") + " and " + (names.length - 2) + " others are typing…";
  }
  function updateTypists() {
    var now = Date.now(), next = Infinity;
    document.querySelectorAll("ul.typists").forEach(function (list) {
      var names = [];
      Array.prototype.slice.call(list.children).forEach(function (item) {
        if (!item.dataset.since) item.dataset.since = String(now);
        var left = Number(item.dataset.since) + TYPING_MS - now;
        if (left <= 0) { item.remove(); return; }
        next = Math.min(next, left);
        names.push(item.dataset.name);
      });
      var line = document.getElementById(list.id.replace(/-typists$/, "-typing"));
      if (line) line.textContent = names.length ? typingSentence(names) : "";
    });
    clearTimeout(typingTimer);
    if (next < Infinity) typingTimer = setTimeout(updateTypists, next + 50);
  }

  // A receipt only moves forward. A send's answer carries the receipt as of the send; the stream
  // may already have brought "Delivered" or "Seen" for that message, and the answer must not
  // take it back. Receipts carry their place in that sequence (data-order, chat/queries.py).
  document.addEventListener("htmx:before:swap", function (e) {
    var tasks = e.detail && e.detail.tasks;
    if (!tasks) return;
    for (var i = tasks.length - 1; i >= 0; i--) {
      var target = tasks[i].target, incoming = tasks[i].fragment && tasks[i].fragment.firstElementChild;
      if (!(target instanceof Element) || !incoming || !target.dataset.order || !incoming.dataset.order) continue;
      if (Number(incoming.dataset.order) < Number(target.dataset.order)) tasks.splice(i, 1);
    }
  });

  function afterChange() {
    scrollToNewest();
    reportRead();
    updateTypists();
  }
  document.addEventListener("DOMContentLoaded", afterChange);
  document.addEventListener("visibilitychange", reportRead);
  document.addEventListener("htmx:after:swap", afterChange);
  document.addEventListener("htmx:sse:after:message", afterChange);

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.key !== "Enter" || e.shiftKey || e.isComposing || !t.matches || !t.matches("textarea[data-enter-sends]")) return;
    e.preventDefault();
    if (t.value.trim() && t.form) {
      stick = true;
      t.form.requestSubmit();
    }
  });
})();
