// Server forms (outgoing and incoming): the password row is shown only for the
// authentication methods that use one, as soon as the method is chosen (no save
// needed: a Gmail preset switched to "User name and password" asks for the app
// password at once). Without JavaScript the row is always shown.
(function () {
  "use strict";
  var SIGN_IN = ["outlook", "gmail"];

  function setUp(form) {
    var method = form.querySelector("select[name$='auth_method']");
    var password = form.querySelector("[data-password-field]");
    if (!method || !password) {
      return;
    }
    var row = password.closest(".form-row") || password.parentNode;
    function update() {
      // style, not the hidden attribute: the rows' CSS display would win over it.
      row.style.display = SIGN_IN.indexOf(method.value) !== -1 ? "none" : "";
    }
    method.addEventListener("change", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.server-form").forEach(setUp);
  });
})();
