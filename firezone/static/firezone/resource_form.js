// New / Edit Resource form (portal.md §4.3.2): the address input follows the chosen type, Name
// mirrors Address until typed into, port inputs follow their protocol checkbox, the IP stack
// recommendation follows the address, and Save shows its busy text while submitting. Validation
// as you type is htmx's (hx-post on the inputs, see _form.html).
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

  form.addEventListener("submit", function () {
    form.querySelectorAll("[data-busy-text]").forEach(function (button) {
      button.textContent = button.getAttribute("data-busy-text");
      window.setTimeout(function () { button.disabled = true; }, 0);
    });
  });

  applyType();
})();
