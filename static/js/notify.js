// Reaching the person in another tab or window: the tab's title carries the unread count
// ("(3) Inbox · RentPe"), live, and, with the person's permission (asked from a button on the
// account page, never on load), a browser notification when a message arrives while the tab is
// hidden: one per conversation (its tag), closed once the conversation is read.
//
// Both read what the stream already brings (static/js/stream.js): the unread badge
// (`#unread-badge[data-count]`) and, for notifications, the frames themselves: a new message's
// frame upserts `<li class="msg" data-author>` into `#conv-<id>-messages`; a read's frame brings
// the conversation's inbox row without its `unread` class.
(() => {
  "use strict";

  const baseTitle = document.title.replace(/^\(\d+\)\s+/, "");

  function showCount() {
    const badge = document.getElementById("unread-badge");
    const count = badge ? Number(badge.dataset.count) || 0 : 0;
    const title = count > 0 ? `(${count}) ${baseTitle}` : baseTitle;
    if (document.title !== title) document.title = title;
  }

  // Notifications -------------------------------------------------------------------------------

  const supported = "Notification" in window;
  const shown = new Map(); // conversation id -> Notification

  function viewer() {
    return document.body.dataset.viewer || "";
  }

  function isLeaderOrAlone() {
    // The tabs of a browser share one stream; the one reading it speaks for all of them, so a
    // message makes one notification, not one per tab. Without Web Locks every tab has its own.
    const sse = document.getElementById("sse");
    return !sse || !sse.dataset.role || sse.dataset.role === "leader";
  }

  function text(element, selector) {
    const found = element.querySelector(selector);
    return found ? found.textContent.replace(/\s+/g, " ").trim() : "";
  }

  function close(conversationId) {
    const notification = shown.get(conversationId);
    if (notification) {
      notification.close();
      shown.delete(conversationId);
    }
  }

  function onFrame(frame) {
    if (!frame || frame.event || !frame.data) return;
    const doc = new DOMParser().parseFromString(`<body>${frame.data}</body>`, "text/html");
    // Read (here or anywhere): its inbox row comes back without `unread`.
    for (const row of doc.querySelectorAll('li[id^="inbox-row-"]')) {
      if (!row.classList.contains("unread")) close(row.id.slice("inbox-row-".length));
    }
    if (!supported || Notification.permission !== "granted" || document.visibilityState !== "hidden") return;
    if (!isLeaderOrAlone()) return;
    for (const partial of doc.querySelectorAll("hx-partial[hx-target]")) {
      const target = /^#conv-(\d+)-messages$/.exec(partial.getAttribute("hx-target") || "");
      if (!target) continue;
      const message = [...partial.querySelectorAll("li.msg[data-author]")].pop();
      if (!message || message.dataset.author === viewer() || message.classList.contains("removed")) continue;
      const conversationId = target[1];
      const row = doc.getElementById(`inbox-row-${conversationId}`);
      const person = row && row.querySelector(`[data-person="${message.dataset.author}"]`);
      const from = text(message, ".msg-sender") || (person ? person.textContent.trim() : "") || "RentPe";
      const body = text(message, ".msg-body").slice(0, 140) || "New message";
      close(conversationId);
      try {
        const notification = new Notification(`New message · ${from}`, {
          body, tag: `rentpe-conversation-${conversationId}`, data: { conversationId },
        });
        notification.addEventListener("click", () => {
          window.focus();
          window.location.assign(`/conversations/${conversationId}`);
          notification.close();
        });
        shown.set(conversationId, notification);
      } catch (error) {
        console.warn("rentpe: a notification could not be shown", error);
      }
    }
  }

  // The button that asks (on the account page) ------------------------------------------------

  function setUpButton() {
    const button = document.getElementById("notify-permission");
    const state = document.getElementById("notify-permission-state");
    if (!button || !state) return;
    const say = () => {
      if (!supported) {
        state.textContent = "This browser can't show notifications.";
        button.hidden = true;
        return;
      }
      const permission = Notification.permission;
      button.hidden = permission !== "default";
      state.textContent = permission === "granted"
        ? "Browser notifications are on for this browser."
        : permission === "denied"
          ? "Notifications are blocked for RentPe in this browser's settings."
          : "Get a notification from this browser when a message arrives while RentPe is in the background.";
    };
    button.addEventListener("click", async () => {
      try {
        await Notification.requestPermission();
      } catch (error) {
        console.warn("rentpe: could not ask for notifications", error);
      }
      say();
    });
    say();
  }

  function start() {
    showCount();
    setUpButton();
    document.addEventListener("rentpe:stream:message", (event) => {
      showCount();
      onFrame(event.detail);
    });
    // A conversation opened in this tab is read (static/js/chat.js): its notification goes too.
    document.addEventListener("visibilitychange", () => {
      const conv = document.querySelector(".conversation[id^='conv-']");
      if (document.visibilityState === "visible" && conv) close(conv.id.slice("conv-".length));
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
