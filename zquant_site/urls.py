"""Root URLs: the admin, the scheduler API and its OpenAPI schema and docs."""

from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("admin/", admin.site.urls),
]
