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

  // --- confirm dialogs and copy buttons (portal.md §1.3) ----------------------------------
  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    var opener = target.closest("[data-confirm-open]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-confirm-open"));
      if (dialog && dialog.showModal) dialog.showModal();
      return;
    }
    var cancel = target.closest("[data-confirm-cancel]");
    if (cancel) {
      var open = cancel.closest("dialog");
      if (open) open.close();
      return;
    }
    var copy = target.closest("[data-copy]");
    if (copy) {
      var code = copy.parentElement && copy.parentElement.querySelector("code");
      if (code && navigator.clipboard) navigator.clipboard.writeText(code.textContent.trim());
      copy.textContent = "Copied";
      return;
    }
    var reload = target.closest("[data-table-reload]");
    if (reload) {
      refresh([reload.getAttribute("data-table-reload") + "-table"]).then(function () { reload.hidden = true; });
    }
  });

  // --- live regions: re-read parts of this page in place ---------------------------------
  // An element with an id is replaced by the element with the same id in a fresh GET of the
  // current URL (the header tells views this is a refresh, not a visit).
  function refresh(ids) {
    return fetch(window.location.href, { credentials: "same-origin", cache: "no-store", headers: { "X-Live-Refresh": "1" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ids.forEach(function (id) {
          var now = document.getElementById(id);
          var next = fresh.getElementById(id);
          if (now && next) now.replaceWith(document.importNode(next, true));
        });
        document.dispatchEvent(new CustomEvent("fz:refreshed", { detail: ids }));
      })
      .catch(function () { /* offline: the next event retries */ });
  }
  window.fzRefresh = refresh;

  // --- live table filters (portal.md §1.4): debounce 100 ms, no Enter submit --------------
  function tableUrl(form) {
    var id = form.getAttribute("data-table-filters");
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (String(value).trim() !== "") params.append(key, value);
    });
    params.delete(id + "_cursor");
    var query = params.toString();
    return window.location.pathname + (query ? "?" + query : "");
  }
  var filterTimer = null;
  function onFilter(event) {
    var form = event.target.closest && event.target.closest("form[data-table-filters]");
    if (!form) return;
    window.clearTimeout(filterTimer);
    filterTimer = window.setTimeout(function () {
      var url = tableUrl(form);
      if (url === window.location.pathname + window.location.search) return;
      window.history.pushState({}, "", url);
      refresh([form.getAttribute("data-table-filters") + "-table"]);
    }, 100);
  }
  document.addEventListener("input", onFilter);
  document.addEventListener("change", onFilter);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.closest && event.target.closest("form[data-table-filters]")) event.preventDefault();
  });
  window.addEventListener("popstate", function () { window.location.reload(); });

  // --- the live socket (portal.md §7) ------------------------------------------------------
  var liveAccount = document.body && document.body.dataset.liveAccount;
  function liveTopics() {
    var topics = {};
    document.querySelectorAll("[data-live-topics]").forEach(function (el) {
      el.getAttribute("data-live-topics").split(/\s+/).forEach(function (t) { if (t) topics[t] = true; });
    });
    return Object.keys(topics).sort();
  }
  function onLiveEvent(data) {
    if (data.event === "session_revoked") { window.location.reload(); return; }
    if (data.event !== "presence" && data.event !== "change") return;
    var reload = [];
    document.querySelectorAll("[data-live-topics]").forEach(function (el) {
      if (el.getAttribute("data-live-topics").split(/\s+/).indexOf(data.topic) < 0) return;
      if (el.getAttribute("data-live-mode") === "stale") {
        var button = document.getElementById(el.getAttribute("data-live-reload-button"));
        if (button) button.hidden = false;
      } else if (el.id) {
        reload.push(el.id);
      }
    });
    if (data.event === "presence") {
      // Deploy pages: the new gateway/relay joined with this page's token.
      document.querySelectorAll("[data-live-token]").forEach(function (el) {
        var token = el.getAttribute("data-live-token");
        Object.keys(data.joins || {}).forEach(function (key) {
          if (data.joins[key] && data.joins[key].token_id === token) el.setAttribute("data-connected", "true");
        });
      });
    }
    if (reload.length) refresh(reload);
  }
  var lost = document.getElementById("connection-lost");
  function connectLive(attempt) {
    var topics = liveTopics();
    if (!liveAccount || !window.WebSocket) return;  // no topics: still told about revocation
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/live?account=" + encodeURIComponent(liveAccount) + "&topics=" + encodeURIComponent(topics.join(",")));
    var opened = false;
    socket.onopen = function () {
      opened = true;
      if (lost) lost.hidden = true;
      document.body.setAttribute("data-live", "connected");
      if (attempt > 0) refresh(document.querySelectorAll("[data-live-topics][id]").length ? Array.prototype.map.call(document.querySelectorAll("[data-live-topics][id]"), function (el) { return el.id; }) : []);
    };
    socket.onmessage = function (message) {
      try { onLiveEvent(JSON.parse(message.data)); } catch (e) { /* ignore bad frames */ }
    };
    socket.onclose = function (event) {
      document.body.setAttribute("data-live", "closed");
      if (event.code === 4001) { window.location.reload(); return; }
      if (event.code >= 4400 && event.code < 4500) return;  // refused: retrying cannot help
      if (opened && lost) lost.hidden = false;
      var delay = Math.min(10000, 500 * Math.pow(2, attempt));
      window.setTimeout(function () { connectLive(opened ? 1 : attempt + 1); }, delay);
    };
  }
  connectLive(0);
})();
