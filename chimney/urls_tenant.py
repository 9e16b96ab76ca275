"""URLs of an environment's host (<slug>.<BASE_DOMAIN>, <slug>.staging.<BASE_DOMAIN>)."""

from django.urls import include, path

urlpatterns = [
    path("api/v1/", include("chimney.urls_api")),
    path("", include("flags.urls")),
    path("", include("homes.urls")),
    path("notifications/", include("notifications.urls")),
]
