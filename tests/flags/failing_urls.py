"""Member URLs plus a page that fails (a bad release), for oracle and rollout tests."""

from django.urls import include, path


def boom(request):
    raise RuntimeError("the offer page is broken")


urlpatterns = [
    path("boom/", boom, name="boom"),
    path("", include("chimney.urls_tenant")),
]
