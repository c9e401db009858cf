// Small behaviours htmx can't express. No inline scripts anywhere (the CSP forbids them).
// The live stream itself is static/js/stream.js.

// The server can't catch this page up event by event (too far behind): reload its state.
document.addEventListener("resync", (evt) => {
  if (evt.target instanceof Element && evt.target.id === "sse") location.reload();
});
