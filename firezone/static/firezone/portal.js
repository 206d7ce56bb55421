// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // "Submitting disables the button" (portal.md §3.5): no double submissions.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    form.querySelectorAll("[data-disable-on-submit]").forEach(function (button) {
      window.setTimeout(function () { button.disabled = true; }, 0);
    });
  });
  // Close the user menu when clicking elsewhere.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) menu.removeAttribute("open");
    });
  });
  // Session watch (portal.md §3.13): when this browser's session is revoked or expires, reload,
  // which lands on the sign-in page with "You must sign in to access this page.".
  var sessionUrl = document.body && document.body.dataset.sessionUrl;
  if (sessionUrl && window.fetch) {
    var busy = false;
    var check = function () {
      if (busy || document.visibilityState === "hidden") return;
      busy = true;
      fetch(sessionUrl, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
        .then(function (response) { if (response.status === 401) window.location.reload(); })
        .catch(function () { /* offline: try again later */ })
        .then(function () { busy = false; });
    };
    window.setInterval(check, 3000);
    document.addEventListener("visibilitychange", check);
  }
})();
