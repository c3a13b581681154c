/* The acceptance desk: an issue takes a few seconds (its PDF is drawn), so the button says so and is not
   pressed twice; a link to a zone's card opens it. */
(function () {
  "use strict";
  document.querySelectorAll("form.issue").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector(".issue-go");
      button.disabled = true;
      button.textContent = button.getAttribute("data-busy");
    });
  });
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var card = id && document.getElementById(id);
    if (card && card.tagName === "DETAILS") { card.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  window.wuyeAcceptanceReady = true;
})();
