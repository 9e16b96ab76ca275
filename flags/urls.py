from django.urls import path

from flags import views

app_name = "flags"

urlpatterns = [
    path("events/beacon/", views.beacon, name="beacon"),
    path("privacy/analytics/", views.analytics_consent, name="analytics-consent"),
]
