// Small behaviours htmx can't express. No inline scripts anywhere (the CSP forbids them).

// The live stream (#sse, templates/realtime/_stream.html).
(() => {
  const RETRY_FIRST_MS = 1000;
  const RETRY_MAX_MS = 30000;
  let retryMs = RETRY_FIRST_MS;

  const isStream = (elt) => elt instanceof Element && elt.id === "sse";

  // The server can't catch this page up event by event (too far behind): reload its state.
  document.addEventListener("resync", (evt) => {
    if (isStream(evt.target)) location.reload();
  });

  // htmx 4.0.1 retries a stream it has taken over, but never a first connect that failed
  // (network down, timeout, a 5xx while a worker restarts). Ask again later, with backoff,
  // through hx-trigger="sse-retry". A 401 means logged out: the next page load shows it.
  const retryLater = (evt) => {
    if (!isStream(evt.target)) return;
    if (evt.detail?.ctx?.response?.status === 401) return;
    const delay = retryMs * (0.7 + 0.6 * Math.random());
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    setTimeout(() => htmx.trigger(evt.target, "sse-retry"), delay);
  };
  document.addEventListener("htmx:error", retryLater);
  document.addEventListener("htmx:response:error", retryLater);
  document.addEventListener("htmx:sse:after:connection", (evt) => {
    if (isStream(evt.target)) retryMs = RETRY_FIRST_MS;
  });
})();
