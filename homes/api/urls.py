from django.urls import path, register_converter

from homes.api import views


class ExternalIdConverter:
    """An external id as the API accepts it (homes.api.serializers.EXTERNAL_ID_PATTERN)."""

    regex = r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,99}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ExternalIdConverter, "external_id")

urlpatterns = [
    path("members/", views.MembersView.as_view(), name="members"),
    path("members/<external_id:external_id>/", views.MemberDetailView.as_view(), name="member"),
    path(
        "members/<external_id:external_id>/erase/",
        views.MemberEraseView.as_view(),
        name="member-erase",
    ),
    path(
        "members/<external_id:external_id>/offers/",
        views.MemberOffersView.as_view(),
        name="member-offers",
    ),
    path("valuations/", views.ValuationsView.as_view(), name="valuations"),
    path("sales/", views.SalesView.as_view(), name="sales"),
]
