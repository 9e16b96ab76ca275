from django.urls import path

from flags import views

app_name = "flags"

urlpatterns = [
    path("events/beacon/", views.beacon, name="beacon"),
]
