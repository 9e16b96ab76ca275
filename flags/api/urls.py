from django.urls import path

from flags.api import views

urlpatterns = [
    path("events/", views.EventsView.as_view(), name="events"),
    path("metrics/engagement/", views.EngagementView.as_view(), name="engagement"),
]
