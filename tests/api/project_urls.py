"""A project's URLs, not this site's: the admin and the scheduler API under prefixes of its own, the API
included without a namespace argument, and a schema view of its own."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

urlpatterns = [
    path("backoffice/", admin.site.urls),
    path("ops/scheduler/", include("scheduler_app.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]
