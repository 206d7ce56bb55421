// Small progressive enhancements; every page works without this file. htmx does the requests
// (live regions, table filters, validation as you type) and runs the `/live` socket through its
// WebSocket extension; this file only does what htmx does not.
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
    }
  });

  // --- live table filters (portal.md §1.4): empty filters stay out of the pushed URL ---------
  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (!(elt instanceof Element) || !elt.matches("form[data-table-filters]")) return;
    var data = event.detail.formData;
    var keys = [];
    data.forEach(function (value, key) { if (keys.indexOf(key) < 0) keys.push(key); });
    keys.forEach(function (key) {
      var blank = data.getAll(key).every(function (value) { return String(value).trim() === ""; });
      if (blank) data.delete(key);
    });
  });

  // --- the live socket (portal.md §7) ------------------------------------------------------
  // htmx's ws extension connects, reconnects (1006/1011/1012/1013, with backoff) and hands us
  // each frame. Frames are small JSON events; an element following the event's topic either
  // gets htmx's `live` event (its hx-get re-reads it from a fresh GET of the page) or, for
  // "stale" tables, shows its Reload button.
  var socket = document.getElementById("live-socket");
  if (!socket || !window.htmx || !window.WebSocket) return;
  var lost = document.getElementById("connection-lost");

  function topicsOf(el) {
    return (el.getAttribute("data-live-topics") || "").split(/\s+/).filter(Boolean);
  }
  function liveTopics() {
    var topics = [];
    document.querySelectorAll("[data-live-topics]").forEach(function (el) {
      topicsOf(el).forEach(function (t) { if (topics.indexOf(t) < 0) topics.push(t); });
    });
    return topics.sort();
  }
  // Re-read the regions (the outermost only: a region inside another comes with it). htmx drops
  // a trigger while the element's previous request is in flight, and that request may have read
  // the page before this event's change: re-read such a region once more after its swap.
  var again = {};
  function refresh(regions) {
    regions.forEach(function (el) {
      var outer = regions.some(function (other) { return other !== el && other.contains(el); });
      if (outer) return;
      if (el.classList.contains("htmx-request") && el.id) again[el.id] = true;
      else window.htmx.trigger(el, "live");
    });
  }
  document.addEventListener("htmx:afterSettle", function () {
    var ids = Object.keys(again);
    again = {};
    ids.forEach(function (id) {
      var el = document.getElementById(id);
      if (!el) return;
      if (el.classList.contains("htmx-request")) again[id] = true;  // another swap settled first
      else window.htmx.trigger(el, "live");
    });
  });
  function following(topic) {
    return Array.prototype.filter.call(document.querySelectorAll("[data-live-topics]"), function (el) {
      return topic === null || topicsOf(el).indexOf(topic) >= 0;
    });
  }
  // Is this browser still signed in? An htmx GET of the page answers a signed-out browser with
  // HX-Redirect to the sign-in page (and htmx follows it); otherwise nothing changes.
  function checkSession() {
    window.htmx.ajax("GET", window.location.href, { source: socket, swap: "none" });
  }

  function onLiveEvent(data) {
    if (data.event === "session_revoked") { window.location.reload(); return; }
    if (data.event !== "presence" && data.event !== "change") return;
    var reload = [];
    following(data.topic).forEach(function (el) {
      if (el.getAttribute("data-live-mode") === "stale") {
        var button = document.getElementById(el.getAttribute("data-live-reload-button"));
        if (button) button.hidden = false;
      } else if (el.hasAttribute("hx-get")) {
        reload.push(el);
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
    refresh(reload);
  }

  var opened = false;  // has this page's socket ever been open?
  var openNow = false;  // is it open at the moment?
  socket.addEventListener("htmx:wsOpen", function () {
    if (lost) lost.hidden = true;
    document.body.setAttribute("data-live", "connected");
    // Back after a drop: events may have been missed, re-read every live region once.
    if (opened) refresh(following(null).filter(function (el) { return el.hasAttribute("hx-get"); }));
    opened = openNow = true;
  });
  socket.addEventListener("htmx:wsClose", function (event) {
    var wasOpen = openNow;
    openNow = false;
    document.body.setAttribute("data-live", "closed");
    var code = event.detail && event.detail.event ? event.detail.event.code : 0;
    if (code === 4001) { window.location.reload(); return; }  // session revoked or expired
    if (!opened) return;
    if (lost) lost.hidden = false;
    // A refused reconnect may mean the session ended while the socket was down.
    if (!wasOpen) checkSession();
    // htmx retries abnormal closes by itself; a clean close from the server or a proxy too.
    var wrapper = event.detail && event.detail.socketWrapper;
    if (wrapper && [1006, 1011, 1012, 1013].indexOf(code) < 0) {
      window.setTimeout(function () { wrapper.reconnect(); }, 1000 + Math.random() * 4000);
    }
  });
  socket.addEventListener("htmx:wsBeforeMessage", function (event) {
    var data;
    try { data = JSON.parse(event.detail.message); } catch (e) { return; }  // HTML: htmx swaps it
    event.preventDefault();  // our JSON events have nothing for htmx to swap
    if (data && typeof data === "object") onLiveEvent(data);
  });

  var account = socket.getAttribute("data-live-account");
  // No topics: the socket still tells this page about the session's end.
  socket.setAttribute(
    "ws-connect",
    "/live?account=" + encodeURIComponent(account) + "&topics=" + encodeURIComponent(liveTopics().join(","))
  );
})();
