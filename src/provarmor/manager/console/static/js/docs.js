// The API reference at /docs: Swagger UI (vendored, see vendor/README.txt) over this
// manager's own OpenAPI document. No validator badge: it would call a service elsewhere.
"use strict";

window.provarmorDocs = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
