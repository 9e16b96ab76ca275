"""URLs of the platform host (BASE_DOMAIN): the admin for staff and operators."""

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from chimney.views import healthz

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
