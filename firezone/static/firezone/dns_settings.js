// Settings → DNS (portal.md §4.11): "New Resolver" and the trash buttons edit the rows in place
// (without JavaScript they are submit buttons the page answers by re-rendering), and the form
// validates as you type: the page answers a POST with `X-Validate` with the errors a save would
// report; only touched fields (and the list-level "all addresses must be unique") are updated.
(function () {
  "use strict";
  var form = document.querySelector("form[data-dns-form]");
  if (!form) return;
  var list = form.querySelector("[data-resolvers]");
  var template = document.getElementById("resolver-template");
  var some = document.getElementById("resolvers-some");
  var none = document.getElementById("resolvers-none");
  var touched = { search: false, list: false };
  var timer = null;
  var generation = 0;

  function rows() { return Array.prototype.slice.call(list.querySelectorAll("[data-resolver-row]")); }

  // Keep names, ids and the no-JS remove buttons in step with the rows' positions.
  function renumber() {
    rows().forEach(function (row, index) {
      row.querySelectorAll("[name^='account[config][clients_upstream_dns]']").forEach(function (el) {
        el.name = el.name.replace(/\[clients_upstream_dns\]\[[^\]]+\]/, "[clients_upstream_dns][" + index + "]");
      });
      row.querySelectorAll("[id^='resolver-'], [id^='dns-errors-resolver-']").forEach(function (el) {
        el.id = el.id.replace(/resolver-[^-]+-/, "resolver-" + index + "-");
      });
      row.querySelectorAll("label[for^='resolver-']").forEach(function (el) {
        el.htmlFor = el.htmlFor.replace(/resolver-[^-]+-/, "resolver-" + index + "-");
      });
      var remove = row.querySelector("[data-resolver-remove]");
      if (remove) remove.value = "remove_resolver:" + index;
    });
    var count = rows().length;
    if (some) some.hidden = count === 0;
    if (none) none.hidden = count !== 0;
  }

  function replaceErrors(fresh, id) {
    var now = document.getElementById(id);
    var next = fresh.getElementById(id);
    if (!now || !next) return;
    now.replaceWith(document.importNode(next, true));
    var field = document.getElementById(id).closest(".field");
    if (field) field.classList.toggle("field-invalid", next.children.length > 0);
  }

  function validate() {
    var mine = ++generation;
    fetch(window.location.href, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-Validate": "1" },
    })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html || mine !== generation) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        if (touched.search) replaceErrors(fresh, "dns-errors-search_domain");
        if (touched.list) replaceErrors(fresh, "dns-errors-resolvers");
        rows().forEach(function (row, index) {
          if (row.getAttribute("data-touched") !== "true") return;
          replaceErrors(fresh, "dns-errors-resolver-" + index + "-protocol");
          replaceErrors(fresh, "dns-errors-resolver-" + index + "-address");
        });
      })
      .catch(function () { /* offline: the submit validates anyway */ });
  }

  function soon(delay) {
    window.clearTimeout(timer);
    timer = window.setTimeout(validate, delay);
  }

  function onEdit(event) {
    var target = event.target;
    if (!target || !target.getAttribute) return;
    if (target.getAttribute("data-field") === "search_domain") {
      touched.search = true;
    } else if (target.getAttribute("data-resolver-field")) {
      var row = target.closest("[data-resolver-row]");
      if (row) row.setAttribute("data-touched", "true");
      touched.list = true;
    } else {
      return;
    }
    soon(event.type === "input" ? 300 : 0);
  }
  form.addEventListener("input", onEdit);
  form.addEventListener("change", onEdit);

  form.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    if (target.closest("[data-resolver-add]") && template) {
      event.preventDefault();
      var index = rows().length;
      var holder = document.createElement("div");
      holder.innerHTML = template.innerHTML.replace(/__index__/g, String(index));
      var row = holder.querySelector("[data-resolver-row]");
      list.appendChild(row);
      renumber();
      var address = row.querySelector("[data-resolver-field='address']");
      if (address) address.focus();
      return;
    }
    var remove = target.closest("[data-resolver-remove]");
    if (remove) {
      event.preventDefault();
      var gone = remove.closest("[data-resolver-row]");
      if (gone) gone.remove();
      renumber();
      touched.list = true;
      soon(0);
    }
  });

  form.addEventListener("submit", function () {
    generation++;  // a late validation answer must not overwrite the page being submitted
    window.clearTimeout(timer);
  });
})();
