"""Root URLs: the admin, the scheduler API and its OpenAPI schema and docs."""

from csp.constants import NONCE
from csp.decorators import csp_update
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, reverse_lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from zquant_site.auth import TokenView

# Swagger UI's own policy: its icons are data: images, and its page has one inline <style>, which
# templates/drf_spectacular/swagger_ui.html marks with the request's nonce. Scripts stay 'self': the split
# view serves the start-up script as a file instead of inline.
swagger_ui = csp_update({"style-src": [NONCE], "img-src": ["data:"]})(
    SpectacularSwaggerSplitView.as_view(url_name="api-schema")
)

urlpatterns = [
    # The site is the console: its root (the admin's "View site") opens the admin; browsers asking for
    # /favicon.ico get the console's icon.
    path("", RedirectView.as_view(url=reverse_lazy("admin:index")), name="home"),
    path("favicon.ico", RedirectView.as_view(url=static("scheduler_app/favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    path("api/v1/scheduler/", include("scheduler_app.api.urls", namespace="api")),
    path("api/v1/auth/token/", TokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", swagger_ui, name="api-docs"),
]

handler400 = "zquant_site.errors.bad_request"
handler404 = "zquant_site.errors.not_found"
