// The navigation bar's menu button on a narrow screen (wuye-nav.css): a tap, a click, Enter or Space
// opens the links and closes them (aria-expanded says which); Escape closes them and gives the focus
// back to the button; a tap elsewhere on the page closes them too. No framework: the workbench's pages
// and the map pages load it alike.
(function () {
  "use strict";
  function wire(nav) {
    const button = nav.querySelector(".wuye-nav-menu");
    if (!button) return;
    const isOpen = () => button.getAttribute("aria-expanded") === "true";
    const show = (open) => button.setAttribute("aria-expanded", open ? "true" : "false");
    button.addEventListener("click", () => show(!isOpen()));
    nav.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && isOpen()) {
        show(false);
        button.focus();
      }
    });
    document.addEventListener("click", (e) => {
      if (isOpen() && !nav.contains(e.target)) show(false);
    });
    // back to this page from the one a link led to (the back-forward cache): the menu closed again
    window.addEventListener("pageshow", (e) => {
      if (e.persisted) show(false);
    });
  }
  function start() {
    document.querySelectorAll(".wuye-nav").forEach(wire);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
