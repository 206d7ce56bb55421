// New / Edit Resource form (portal.md §4.3.2): the address input follows the chosen type, Name
// mirrors Address until typed into, port inputs follow their protocol checkbox, the IP stack
// recommendation follows the address, and Save shows its busy text while submitting.
(function () {
  "use strict";
  var form = document.querySelector("form[data-resource-form]");
  if (!form) return;
  var address = form.querySelector("#resource_address");
  var name = form.querySelector("#resource_name");
  var types = form.querySelectorAll("input[name='resource[type]']");

  function selectedType() {
    var checked = form.querySelector("input[name='resource[type]']:checked");
    return checked ? checked.value : "";
  }

  function applyType() {
    var type = selectedType();
    var checked = form.querySelector("input[name='resource[type]']:checked");
    address.disabled = !type;
    address.placeholder = checked ? checked.getAttribute("data-placeholder") : address.getAttribute("data-no-type-placeholder");
    form.querySelectorAll("[data-for-type]").forEach(function (el) {
      el.hidden = el.getAttribute("data-for-type") !== type;
    });
  }
  types.forEach(function (radio) { radio.addEventListener("change", applyType); });

  // Name mirrors Address until the user types a name of their own (new resources only).
  if (form.hasAttribute("data-mirror-name") && name) {
    var typed = name.value !== "" && name.value !== address.value;
    name.addEventListener("input", function () { typed = name.value !== ""; });
    address.addEventListener("input", function () { if (!typed) name.value = address.value; });
  }

  function applyRecommendation() {
    var value = address.value.trim().toLowerCase().replace(/\.$/, "");
    var recommended = /mongodb\.net$/.test(value) ? "ipv4_only" : "";
    form.querySelectorAll("[data-recommended-for]").forEach(function (badge) {
      badge.hidden = badge.getAttribute("data-recommended-for") !== recommended;
    });
  }
  address.addEventListener("input", applyRecommendation);

  form.querySelectorAll("[data-protocol-toggle]").forEach(function (box) {
    var ports = document.getElementById(box.getAttribute("data-protocol-toggle"));
    if (!ports) return;
    box.addEventListener("change", function () { ports.disabled = !box.checked; });
  });

  // Validate as you type (portal.md §4): the page answers a POST with `X-Validate` by
  // rendering the errors a save would report; only the touched fields' errors are shown.
  var touched = {};
  var timer = null;
  var generation = 0;
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
        Object.keys(touched).forEach(function (key) {
          var now = document.getElementById("resource-errors-" + key);
          var next = fresh.getElementById("resource-errors-" + key);
          if (now && next) now.replaceWith(document.importNode(next, true));
        });
      })
      .catch(function () { /* offline: the submit validates anyway */ });
  }
  function onEdit(event) {
    var key = event.target.getAttribute && event.target.getAttribute("data-field");
    if (!key) return;
    touched[key] = true;
    // A new type re-validates the address already typed.
    if (key === "type" && address.value) touched.address = true;
    window.clearTimeout(timer);
    timer = window.setTimeout(validate, event.type === "input" ? 300 : 0);
  }
  form.addEventListener("input", onEdit);
  form.addEventListener("change", onEdit);

  form.addEventListener("submit", function () {
    generation++;  // a late validation answer must not overwrite the page being submitted
    window.clearTimeout(timer);
    form.querySelectorAll("[data-busy-text]").forEach(function (button) {
      button.textContent = button.getAttribute("data-busy-text");
      window.setTimeout(function () { button.disabled = true; }, 0);
    });
  });

  applyType();
})();
