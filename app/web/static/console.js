// Salesbridge console: the few behaviours HTML has no attribute for. No inline script
// anywhere (the Content-Security-Policy forbids it), so everything is wired here.
(function () {
  "use strict";

  // "Copy" buttons: <button data-copy="ID"> copies the value (or text) of element ID.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) return;
    var text = source.value !== undefined ? source.value : source.textContent;
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallback(source, done); });
    } else {
      fallback(source, done);
    }
  });

  function fallback(source, done) {
    if (source.select) { source.select(); }
    try { if (document.execCommand("copy")) done(); } catch (e) { /* the text stays selected */ }
  }

  // After an htmx swap that reports something, move focus to the message so screen
  // readers and keyboard users learn the outcome.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "messages") {
      var message = event.detail.target.querySelector(".message");
      if (message) { message.setAttribute("tabindex", "-1"); message.focus(); }
    }
  });
})();
