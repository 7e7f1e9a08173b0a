// Starts Swagger UI on /api/v1/docs from this collector's own files (no inline script, no CDN).
window.addEventListener('load', function () {
  var root = document.getElementById('swagger-ui')
  window.SwaggerUIBundle({
    url: root.getAttribute('data-openapi-url'),
    dom_id: '#swagger-ui',
    deepLinking: true
  })
})
