from django.urls import include, path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("preferences/", views.preferences, name="preferences"),
    path("manage/<str:token>/", views.manage, name="manage"),
    path("unsubscribe/<str:token>/", views.unsubscribe_view, name="unsubscribe"),
    path("o/<str:token>.gif", views.open_pixel, name="open"),
    path("c/<str:token>/", views.click, name="click"),
    path("push/subscribe/", views.push_subscribe, name="push-subscribe"),
    path("push/unsubscribe/", views.push_unsubscribe, name="push-unsubscribe"),
    path("push/key/", views.push_key, name="push-key"),
    path("sw.js", views.service_worker, name="service-worker"),
    # Provider webhooks (bounces, complaints): esp/<provider>/tracking/, e.g. postmark.
    path("esp/", include("anymail.urls")),
]
