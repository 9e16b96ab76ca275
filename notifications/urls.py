from anymail.urls import urlpatterns as provider_webhooks
from django.urls import URLPattern, include, path

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
    # Provider webhooks (bounces, complaints): esp/<provider>/tracking/, e.g. postmark; each
    # answers 404 unless anymail's WEBHOOK_SECRET is set.
    path(
        "esp/",
        include(
            (
                [
                    URLPattern(
                        webhook.pattern,
                        views.provider_webhook(webhook.callback),
                        webhook.default_args,
                        webhook.name,
                    )
                    for webhook in provider_webhooks
                ],
                "anymail",
            )
        ),
    ),
]
