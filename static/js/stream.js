// The live stream: one per browser, shared by every tab of the person (docs/architecture.md,
// "One stream per browser"). No inline scripts anywhere (the CSP forbids them).
//
// Browsers open at most six HTTP/1.1 connections per origin, across all tabs; a stream per tab
// would lock the seventh tab (and every send) out. So the tabs elect one of them with the Web
// Locks API (a lock held for the tab's life; when the tab closes or crashes the browser hands the
// lock to the next tab at once). That tab, the leader, reads GET /events and passes every frame
// to the others over a BroadcastChannel; every tab, the leader included, applies a frame with
// the same htmx swap. Without the Web Locks API (old browsers, plain-HTTP sites other than
// localhost, which are not secure contexts) each tab reads its own stream, as before.
//
// The cursor. Every tab keeps the id of the last event it is sure to have applied, `cursor`:
// it starts at the page's `?after=` (everything up to it is in the page) and moves to a frame's
// id only when the frame continues from it (the frame's `from`, the id before it on the same
// stream, is at or below `cursor`). A tab that joins tells the leader its cursor ("hello"); a
// leader whose stream is past it reopens the stream from that cursor, and the server replays
// what the new tab may have missed (to every tab: fragments swap by id, so a repeat changes
// nothing). A tab that takes over opens the stream from its own cursor, and the others say
// hello again. So nothing committed after a page's cursor can be missed by that page.
(() => {
  "use strict";

  const sse = document.getElementById("sse");
  if (!sse || !sse.dataset.stream) return;

  // Reconnecting. A network error is retried within about a second whatever the count, so that
  // missed events show within two seconds of the network coming back (nothing tells a page that
  // a cut between it and the server is over but trying); an answer of the server's (a 5xx, a
  // 429) backs off, honouring Retry-After, so that an overloaded server is not hammered.
  const RETRY_FIRST_MS = 250;
  const RETRY_NETWORK_MAX_MS = 1200;
  const RETRY_SERVER_MAX_MS = 30000;
  const JITTER = 0.25;
  const CONNECT_TIMEOUT_MS = 10000;
  // The server writes a comment every 25 s (STREAM_HEARTBEAT_SECONDS): two missed heartbeats
  // mean a dead connection that no error will ever report (a half-open socket after a network
  // change). A stream that ends sooner than SHORT_MS after it opened counts as a failure.
  const STALL_MS = 55000;
  const SHORT_MS = 3000;
  const STALE_MS = 30000;
  // The indicator: quiet for short blips (the server ends every stream after 5-10 minutes and it
  // is back in a moment), "Reconnecting…" after SHOW_AFTER_MS down, "Offline" after OFFLINE_AFTER_MS
  // or as soon as the browser knows it is offline.
  const SHOW_AFTER_MS = 1500;
  const OFFLINE_AFTER_MS = 20000;

  const viewer = document.body.dataset.viewer || "";
  const name = "rentpe-stream:" + viewer;
  const url = new URL(sse.dataset.stream, location.href);
  const tab = Math.random().toString(36).slice(2);
  const indicator = document.getElementById("connection");
  const shared = "locks" in navigator && "BroadcastChannel" in window;
  const channel = shared ? new BroadcastChannel(name) : null;

  let cursor = Number(url.searchParams.get("after")) || 0;
  let leader = false;
  let joined = !shared; // a follower is live once the leader has taken its hello
  let state = "connecting";
  let downSince = Date.now();
  let indicatorTimer = null;

  // Applying frames, in order, the same way in every tab --------------------------------------

  let applying = Promise.resolve();

  function apply(frame) {
    applying = applying.then(async () => {
      try {
        if (frame.event) {
          htmx.trigger(sse, frame.event, { data: frame.data, id: frame.id });
        } else if (frame.data) {
          await htmx.swap({ sourceElement: sse, target: sse, swap: "innerHTML swapEmpty:false", text: frame.data });
        }
      } catch (error) {
        console.warn("rentpe: a live update could not be applied", error);
      }
      if (frame.id != null && frame.from <= cursor && frame.id > cursor) cursor = frame.id;
      sse.dataset.cursor = String(cursor);
      sse.dispatchEvent(new CustomEvent("rentpe:stream:message", { bubbles: true, detail: frame }));
    });
    return applying;
  }

  // The connection state, shown quietly -------------------------------------------------------

  let wasLive = false;
  function showState() {
    const live = state === "live" && joined;
    sse.dataset.state = live ? "live" : state;
    // Sends that failed meanwhile are retried when this fires (static/js/chat.js).
    if (live && !wasLive) document.dispatchEvent(new CustomEvent("rentpe:stream:live"));
    wasLive = live;
    document.documentElement.dataset.stream = live ? "live" : "down";
    clearTimeout(indicatorTimer);
    if (!indicator) return;
    if (live || state === "closed") {
      indicator.hidden = true;
      indicator.textContent = "";
      return;
    }
    if (state === "replaced") {
      indicator.textContent = "Live updates stopped: too many open windows. Reload to resume.";
      indicator.dataset.level = "offline";
      indicator.hidden = false;
      return;
    }
    const down = Date.now() - downSince;
    if (!navigator.onLine || down >= OFFLINE_AFTER_MS) {
      indicator.textContent = "Offline";
      indicator.dataset.level = "offline";
      indicator.hidden = false;
      return;
    }
    if (down >= SHOW_AFTER_MS) {
      indicator.textContent = "Reconnecting…";
      indicator.dataset.level = "reconnecting";
      indicator.hidden = false;
    }
    indicatorTimer = setTimeout(showState, (down < SHOW_AFTER_MS ? SHOW_AFTER_MS : OFFLINE_AFTER_MS) - down + 50);
  }

  function setState(next, since) {
    if (next !== "live" && state === "live") downSince = since || Date.now();
    if (since) downSince = since;
    state = next;
    showState();
  }

  // The leader: reads the stream -------------------------------------------------------------

  let controller = null;   // aborts the current fetch
  let wakeUp = null;       // ends a wait between attempts
  let restartWanted = false;
  let replaced = false;    // the server ended this stream for a newer one of the person's
  let stopped = false;     // this browser is logging out: no reconnect (it would only get a 401)
  let lastByte = 0;
  let streamCursor = 0; // the id before the next frame on the leader's current stream
  const waitingAcks = new Set();

  function broadcast(message) {
    if (channel) channel.postMessage(message);
  }

  function announceState() {
    broadcast({ t: "state", state, since: downSince, acks: state === "live" ? [...waitingAcks] : [] });
    if (state === "live") waitingAcks.clear();
  }

  function leaderState(next) {
    setState(next);
    announceState();
  }

  // Reconnect now: the network is back, a tab became visible, or a new tab needs an older cursor.
  function wake(restart) {
    if (!leader) return;
    // A stream silent for longer than a heartbeat may be dead without knowing it (a laptop that slept).
    const stale = state === "live" && Date.now() - lastByte > STALE_MS;
    if ((restart || stale) && controller) { restartWanted = true; controller.abort(); }
    if (wakeUp) wakeUp();
  }

  function pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() { clearTimeout(timer); wakeUp = null; resolve(); }
      wakeUp = done;
    });
  }

  function retryDelay(attempt, response) {
    const retryAfter = response && Number(response.headers.get("Retry-After"));
    if (retryAfter > 0) return Math.min(retryAfter * 1000, RETRY_SERVER_MAX_MS);
    const network = !response || [502, 504].includes(response.status);
    const max = network ? RETRY_NETWORK_MAX_MS : RETRY_SERVER_MAX_MS;
    const ms = Math.min(RETRY_FIRST_MS * 2 ** attempt, max);
    return ms * (1 + JITTER * (2 * Math.random() - 1));
  }

  async function lead() {
    let attempt = 0;
    for (;;) {
      if (stopped) { leaderState("closed"); return; }
      if (!navigator.onLine) {
        leaderState("offline");
        await pause(30000); // the `online` event ends this at once
        continue;
      }
      if (state === "live") leaderState("connecting");
      controller = new AbortController();
      const mine = controller;
      streamCursor = cursor;
      const timeout = setTimeout(() => mine.abort(), CONNECT_TIMEOUT_MS);
      let response = null;
      try {
        response = await fetch(url, {
          headers: { Accept: "text/event-stream", "Last-Event-ID": String(cursor) },
          credentials: "same-origin",
          cache: "no-store",
          signal: mine.signal,
        });
      } catch (error) {
        response = null;
      } finally {
        clearTimeout(timeout);
      }
      if (restartWanted) { restartWanted = false; attempt = 0; controller = null; continue; }
      if (stopped || (response && response.status === 401)) {
        // Logged out (or the session was ended): the next page load shows it.
        controller = null;
        leaderState("closed");
        return;
      }
      const isStream = response && response.ok && (response.headers.get("Content-Type") || "").includes("text/event-stream");
      if (!isStream) {
        controller = null;
        if (state !== "reconnecting") leaderState("reconnecting");
        await pause(retryDelay(attempt++, response));
        continue;
      }
      const opened = Date.now();
      leaderState("live");
      lastByte = Date.now();
      await read(response.body, mine);
      controller = null;
      if (stopped) { leaderState("closed"); return; }
      if (replaced) {
        // Too many of this person's streams on the server (STREAM_MAX_PER_USER): this one, the
        // oldest, was ended. Reconnecting would only push out another one, and so on in a loop.
        leaderState("replaced");
        return;
      }
      if (restartWanted) { restartWanted = false; attempt = 0; continue; }
      leaderState("reconnecting");
      if (Date.now() - opened < SHORT_MS) await pause(retryDelay(attempt++, null));
      else attempt = 0;
    }
  }

  // The SSE wire format (id:, event:, data:, retry:, comments), as in the WHATWG spec.
  async function read(body, mine) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let first = true;
    let frame = { data: "", event: "", id: null, hasData: false };
    let stall = setTimeout(() => mine.abort(), STALL_MS);
    mine.signal.addEventListener("abort", () => reader.cancel().catch(() => {}));
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        lastByte = Date.now();
        clearTimeout(stall);
        stall = setTimeout(() => mine.abort(), STALL_MS);
        let text = decoder.decode(value, { stream: true });
        if (first && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        first = false;
        buffer += text;
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop();
        for (const line of lines) {
          if (line === "") {
            if (frame.hasData || frame.event || frame.id !== null) dispatch(frame);
            frame = { data: "", event: "", id: null, hasData: false };
            continue;
          }
          if (line[0] === ":") continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value_ = colon < 0 ? "" : line.slice(colon + 1);
          if (value_[0] === " ") value_ = value_.slice(1);
          if (field === "data") { frame.data += (frame.hasData ? "\n" : "") + value_; frame.hasData = true; }
          else if (field === "event") frame.event = value_;
          else if (field === "id" && /^\d+$/.test(value_)) frame.id = Number(value_);
        }
      }
    } catch (error) {
      // Cut, reset, aborted: the loop in lead() reconnects from the cursor.
    } finally {
      clearTimeout(stall);
    }
  }

  function dispatch(parsed) {
    if (parsed.event === "replaced") replaced = true;
    const frame = { data: parsed.data, event: parsed.event, id: parsed.id, from: streamCursor };
    if (parsed.id !== null) streamCursor = parsed.id;
    broadcast({ t: "frame", frame });
    apply(frame);
  }

  function becomeLeader() {
    leader = true;
    joined = true;
    sse.dataset.role = "leader";
    // Give the other tabs a moment to say where they are, so one connect serves them all.
    broadcast({ t: "leader" });
    setTimeout(() => lead().catch((error) => console.warn("rentpe: the live stream stopped", error)), channel ? 100 : 0);
  }

  // Messages between tabs ---------------------------------------------------------------------

  if (channel) {
    channel.onmessage = ({ data: message }) => {
      if (!message || typeof message !== "object") return;
      if (message.t === "frame" && !leader) {
        apply(message.frame);
      } else if (message.t === "state" && !leader) {
        if (message.acks && message.acks.includes(tab)) joined = true;
        setState(message.state, message.since);
      } else if (message.t === "leader" && !leader) {
        joined = false;
        hello();
      } else if (message.t === "hello" && leader) {
        // A tab behind what this stream has already passed on: reopen it from that tab's cursor.
        waitingAcks.add(message.tab);
        if (message.cursor < (controller ? streamCursor : cursor)) {
          cursor = Math.min(cursor, message.cursor);
          wake(true);
        } else {
          announceState();
        }
      } else if (message.t === "wake") {
        wake(Boolean(message.restart));
      } else if (message.t === "stop") {
        stop();
      }
    };
  }

  function hello() {
    // Whatever was applied is safe to resume from; the page's own cursor otherwise.
    applying.then(() => broadcast({ t: "hello", tab, cursor }));
  }

  // Logging out (here or in another tab) ends the session, and the server ends its streams: stop
  // this browser's stream first, so that nobody reconnects into a 401 while the page goes.
  function stop() {
    stopped = true;
    if (controller) controller.abort();
    if (wakeUp) wakeUp();
  }
  document.addEventListener("submit", (event) => {
    if (!event.target.matches("form[data-ends-session]") || event.defaultPrevented) return;
    broadcast({ t: "stop" });
    stop();
  });

  // Reconnect at once when the network comes back or a tab comes to the front ----------------

  window.addEventListener("online", () => {
    // The old connection may be dead without knowing it (a new network): open a fresh one.
    if (leader) wake(true); else broadcast({ t: "wake", restart: true });
    showState();
  });
  window.addEventListener("offline", showState);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState !== "visible") return;
    if (leader) wake(false); else broadcast({ t: "wake", restart: false });
  });

  sse.dataset.role = "follower";
  if (shared) {
    navigator.locks.request(name, () => {
      becomeLeader();
      return new Promise(() => {}); // held until the tab goes away
    });
    hello();
  } else {
    becomeLeader();
  }
  showState();
})();
