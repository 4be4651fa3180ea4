/* ISN portal: small enhancements only; every page works without this file. No inline script anywhere (CSP). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  document.addEventListener("DOMContentLoaded", function () {
    // The language picker changes language as soon as one is chosen (its button is there without JavaScript).
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    // Composing: the FLASH confirmation is shown only while FLASH is chosen (the server checks it either way).
    var confirm = document.querySelector("[data-flash-confirm]");
    if (confirm) {
      var radios = document.querySelectorAll("input[name=priority]");
      var update = function () {
        var flash = document.querySelector("input[name=priority][value=flash]:checked");
        confirm.hidden = !flash;
      };
      radios.forEach(function (radio) { radio.addEventListener("change", update); });
      update();
    }
    // Composing: choosing an entity's type shows its fields at once, as its "Show the fields" button does without
    // JavaScript (the form comes back from the server with everything typed kept).
    document.querySelectorAll("select[data-entity-type]").forEach(function (select) {
      select.addEventListener("change", function () {
        var button = select.closest("fieldset").querySelector("button[data-entity-show]");
        if (button && select.form.requestSubmit) { select.form.requestSubmit(button); }
      });
    });
  });
})();
