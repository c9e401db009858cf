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

  // The thread is a live region announcing additions. A message upserted again unchanged (the
  // send's answer, then the same message from the stream) keeps its node, so it is announced once.
  document.addEventListener("htmx:before:swap", function (e) {
    var tasks = (e.detail && e.detail.tasks) || [];
    tasks.forEach(function (task) {
      if (!task.fragment || !task.swapSpec || task.swapSpec.style !== "upsert") return;
      Array.prototype.slice.call(task.fragment.children).forEach(function (incoming) {
        var current = incoming.id && document.getElementById(incoming.id);
        if (current && current.isEqualNode(incoming)) incoming.remove();
      });
    });
  });

  function afterChange() {
    scrollToNewest();
    reportRead();
    updateTypists();
  }
  document.addEventListener("DOMContentLoaded", afterChange);
  document.addEventListener("visibilitychange", reportRead);
  // A phone's keyboard opening shrinks the thread (interactive-widget=resizes-content): keep the
  // newest message above the composer.
  window.addEventListener("resize", scrollToNewest);
  document.addEventListener("htmx:after:swap", afterChange);
  document.addEventListener("rentpe:stream:message", afterChange);

  // A message is never silently lost. A send that fails (no network, the connection cut, no
  // answer within SEND_TIMEOUT_MS, a 5xx) stays in the thread as "Not sent" with Retry, and is
  // retried by itself when the connection returns (the stream is live again, or the browser is
  // back online). Every retry posts the same client key, so a send that did arrive the first time
  // is answered with the stored message and never stored twice. Failed sends are kept in
  // localStorage until they go through: a reload, or another tab of the conversation, shows them.
  // Refusals (4xx: blocked, closed board, too many messages) are answers, shown in the composer.
  var SEND_TIMEOUT_MS = 15000;
  var PENDING_KEY = "rentpe-unsent:" + (document.body.dataset.viewer || "");

  function isComposer(el) {
    return el instanceof HTMLFormElement && el.classList.contains("composer") && /^conv-\d+-composer$/.test(el.id);
  }
  function conversationOf(form) { return form.id.replace(/^conv-(\d+)-composer$/, "$1"); }

  function loadPending() {
    try { return JSON.parse(localStorage.getItem(PENDING_KEY) || "[]"); } catch (e) { return []; }
  }
  function savePending(list) {
    try {
      if (list.length) localStorage.setItem(PENDING_KEY, JSON.stringify(list));
      else localStorage.removeItem(PENDING_KEY);
    } catch (e) { /* storage full or off: the thread still shows it */ }
  }
  function forget(key) { savePending(loadPending().filter(function (p) { return p.key !== key; })); }

  function newClientKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  // The unsent message in the thread, after the sent ones (its data-key sorts after every id).
  function showPending(p) {
    var list = document.getElementById("conv-" + p.conv + "-messages");
    if (!list) return null;
    var item = document.getElementById("unsent-" + p.key);
    if (!item) {
      item = document.createElement("li");
      item.id = "unsent-" + p.key;
      item.className = "msg unsent";
      item.dataset.key = "unsent-" + p.key;
      item.dataset.author = document.body.dataset.viewer || "";
      var body = document.createElement("div");
      body.className = "msg-body";
      body.textContent = p.body;
      var status = document.createElement("p");
      status.className = "msg-status";
      var text = document.createElement("span");
      text.className = "msg-status-text";
      var retry = document.createElement("button");
      retry.type = "button";
      retry.className = "linklike msg-retry";
      retry.textContent = "Retry";
      retry.addEventListener("click", function () { resend(p.key); });
      status.append(text, " ", retry);
      item.append(body, status);
      list.appendChild(item);
    }
    setPendingStatus(item, p.error ? "Not sent: " + p.error : "Not sent", false);
    scrollToNewest();
    return item;
  }
  function setPendingStatus(item, text, busy) {
    item.querySelector(".msg-status-text").textContent = text;
    item.querySelector(".msg-retry").hidden = busy;
    item.classList.toggle("sending", busy);
  }

  // The composer's own send: give it a deadline, and keep it when it fails.
  document.addEventListener("htmx:config:request", function (e) {
    if (isComposer(e.target)) e.detail.ctx.request.timeout = SEND_TIMEOUT_MS;
  });
  function sendFailed(e) {
    var form = e.target, ctx = e.detail && e.detail.ctx;
    if (!isComposer(form) || !ctx) return;
    var status = ctx.response && ctx.response.status;
    if (status && status < 500) return; // a refusal: the composer shows why
    var data = ctx.request && ctx.request.body instanceof FormData ? ctx.request.body : new FormData(form);
    var body = String(data.get("body") || "").trim();
    var key = String(data.get("client_key") || "");
    if (!body || !key) return;
    var p = { conv: conversationOf(form), action: form.action, key: key, body: body, at: Date.now() };
    savePending(loadPending().filter(function (q) { return q.key !== key; }).concat([p]));
    showPending(p);
    // The composer is free for the next message, with a key of its own.
    var box = form.querySelector("textarea[name=body]");
    if (box && box.value.trim() === body) box.value = "";
    var keyField = form.querySelector("input[name=client_key]");
    if (keyField && keyField.value === key) keyField.value = newClientKey();
  }
  document.addEventListener("htmx:error", sendFailed);
  document.addEventListener("htmx:response:error", sendFailed);

  var resending = {};
  function resend(key) {
    var p = loadPending().filter(function (q) { return q.key === key; })[0];
    var item = document.getElementById("unsent-" + key);
    if (!p || resending[key]) return Promise.resolve();
    if (item) setPendingStatus(item, "Sending…", true);
    resending[key] = true;
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, SEND_TIMEOUT_MS);
    var form = new URLSearchParams({ csrf_token: csrfToken(), client_key: p.key, body: p.body });
    return fetch(p.action, {
      method: "POST", credentials: "same-origin", signal: controller.signal, body: form,
      headers: { "X-CSRFToken": csrfToken(), "HX-Request": "true" },
    }).then(function (response) {
      return response.text().then(function (text) { return { status: response.status, text: text }; });
    }).then(function (answer) {
      if (answer.status >= 200 && answer.status < 300) {
        forget(key);
        if (item) item.remove();
        // The answer is what a send answers: the message and the receipt, and a fresh composer,
        // which is left out (the person may be typing the next message in this one).
        var doc = new DOMParser().parseFromString("<template>" + answer.text + "</template>", "text/html");
        var content = doc.querySelector("template").content;
        content.querySelectorAll("form.composer").forEach(function (f) { f.remove(); });
        var holder = document.createElement("div");
        holder.appendChild(content);
        var list = document.getElementById("conv-" + p.conv + "-messages");
        if (list) return htmx.swap({ sourceElement: list, target: list, swap: "none", text: holder.innerHTML });
        return;
      }
      if (answer.status < 500) {
        // Refused now (blocked, closed, too many messages): say why, keep it and its Retry.
        var why = new DOMParser().parseFromString(answer.text, "text/html").querySelector(".composer-error");
        p.error = why ? why.textContent.trim() : "refused (" + answer.status + ")";
        p.refused = true;
        savePending(loadPending().map(function (q) { return q.key === key ? p : q; }));
      }
      throw new Error("not sent");
    }).catch(function () {
      var shown = document.getElementById("unsent-" + key);
      if (shown) setPendingStatus(shown, p.error ? "Not sent: " + p.error : "Not sent", false);
    }).then(function () {
      clearTimeout(timer);
      delete resending[key];
    });
  }

  // When the connection returns, send what is waiting, one after the other in the order it was
  // written (not what was refused: that needs a person).
  var resendingAll = null;
  function resendAll() {
    if (resendingAll) return;
    resendingAll = loadPending().reduce(function (previous, p) {
      if (p.refused || !document.getElementById("conv-" + p.conv + "-messages")) return previous;
      return previous.then(function () { return resend(p.key); });
    }, Promise.resolve()).then(function () { resendingAll = null; });
  }
  // The first send may have arrived after all: the stream then brings that message to this tab
  // while it is still shown as unsent. Its retry (same key) is answered with the stored message
  // and clears the unsent copy; a different message with the same text is harmless to retry.
  function resendArrived() {
    var viewer = document.body.dataset.viewer;
    loadPending().forEach(function (p) {
      if (p.refused || resending[p.key]) return;
      var list = document.getElementById("conv-" + p.conv + "-messages");
      if (!list) return;
      var bodies = list.querySelectorAll('.msg:not(.unsent)[data-author="' + viewer + '"] .msg-body');
      for (var i = 0; i < bodies.length; i++) {
        if (bodies[i].textContent === p.body) { resend(p.key); return; }
      }
    });
  }
  document.addEventListener("rentpe:stream:message", resendArrived);
  document.addEventListener("rentpe:stream:live", resendAll);
  window.addEventListener("online", resendAll);
  document.addEventListener("DOMContentLoaded", function () { loadPending().forEach(showPending); });

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (e.key !== "Enter" || e.shiftKey || e.isComposing || !t.matches || !t.matches("textarea[data-enter-sends]")) return;
    e.preventDefault();
    var photos = t.form && t.form.querySelector("input[data-photo-input]");
    if (t.form && (t.value.trim() || (photos && photos.files.length))) {
      stick = true;
      t.form.requestSubmit();
    }
  });

  // Photos in the composer: previews of what is chosen before it is sent, and files dropped on the
  // composer land in its file input (the form sends them as it would without JavaScript).
  function showPreviews(input) {
    var box = input.form && input.form.querySelector("[data-photo-previews]");
    if (!box) return;
    box.querySelectorAll("img").forEach(function (img) { URL.revokeObjectURL(img.src); });
    box.textContent = "";
    Array.prototype.slice.call(input.files, 0, 4).forEach(function (file, i) {
      if (!/^image\//.test(file.type)) return;
      var img = document.createElement("img");
      img.src = URL.createObjectURL(file);
      img.alt = "Photo " + (i + 1) + " to send: " + file.name;
      box.appendChild(img);
    });
  }
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("input[data-photo-input]")) showPreviews(e.target);
  });
  document.addEventListener("dragover", function (e) {
    var form = e.target.closest && e.target.closest("form.composer");
    if (form && e.dataTransfer && Array.prototype.indexOf.call(e.dataTransfer.types, "Files") >= 0) {
      e.preventDefault();
      form.classList.add("dropping");
    }
  });
  document.addEventListener("dragleave", function (e) {
    var form = e.target.closest && e.target.closest("form.composer");
    if (form) form.classList.remove("dropping");
  });
  document.addEventListener("drop", function (e) {
    var form = e.target.closest && e.target.closest("form.composer");
    var input = form && form.querySelector("input[data-photo-input]");
    if (!input || !e.dataTransfer || !e.dataTransfer.files.length) return;
    e.preventDefault();
    form.classList.remove("dropping");
    input.files = e.dataTransfer.files;
    showPreviews(input);
  });
})();
