// The Share box of a listing (templates/listings/_share.html). Without this file it is a WhatsApp
// link and the listing's link; with it, the device's share sheet where the browser has the Web
// Share API, and "Copy link" copies instead of opening the page it is already on.
(function () {
  "use strict";

  function say(box, text) {
    const status = box.querySelector("[data-share-status]");
    if (status) status.textContent = text;
  }

  function setUp(box) {
    const data = {
      title: box.dataset.shareTitle || document.title,
      text: box.dataset.shareText || "",
      url: box.dataset.shareUrl || location.href,
    };
    const native = box.querySelector("[data-share-native]");
    if (native && typeof navigator.share === "function" && (!navigator.canShare || navigator.canShare(data))) {
      native.hidden = false;
      native.addEventListener("click", () => {
        navigator.share(data).catch((err) => {
          // Closing the share sheet is not a failure; anything else leaves the links below.
          if (err && err.name !== "AbortError") say(box, "Couldn't open sharing here: use the links.");
        });
      });
    }
    const copy = box.querySelector("[data-share-copy]");
    if (copy && navigator.clipboard && typeof navigator.clipboard.writeText === "function") {
      copy.addEventListener("click", (evt) => {
        evt.preventDefault();
        navigator.clipboard.writeText(data.url).then(
          () => say(box, "Link copied."),
          () => say(box, "Couldn't copy: press and hold the link to copy it."),
        );
      });
    }
  }

  function init() {
    document.querySelectorAll("[data-share]").forEach(setUp);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
