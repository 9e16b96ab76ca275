"""The integration API, under /api/v1/ on every environment's host.

Each app's operations live in its `api/` package; the schema and its reference page are
public (they describe the API, not any tenant's data).
"""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from institutions.api.errors import not_found
from institutions.api.views import KeyView

app_name = "api"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("key/", KeyView.as_view(), name="key"),
    path("", include("homes.api.urls")),
    path("", include("flags.api.urls")),
    path("", include("notifications.api.urls")),
    path("", include("releases.api.urls")),
    re_path(r"^[\s\S]*$", not_found),  # any other path, newlines and all
]
