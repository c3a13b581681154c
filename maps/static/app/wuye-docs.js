// /docs: Swagger UI from our own copy of swagger-ui-dist, reading our OpenAPI document (/api).
// No validator badge (it would call another host) and no external fonts.
(function () {
  "use strict";
  const root = document.getElementById("swagger-ui");
  window.wuyeReady = false;
  window.ui = SwaggerUIBundle({
    url: root.dataset.url,
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    onComplete: function () { window.wuyeReady = true; },
  });
})();
