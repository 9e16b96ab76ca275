from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from anymail.signals import tracking

        from chimney import checks  # noqa: F401  (registers the system checks)
        from homes import erasure, messaging
        from institutions import events, metrics, promotion
        from notifications import demo  # noqa: F401  (registers the demo step)
        from notifications.selectors import delivery_failure_rate
        from notifications.services.account import account_mailer
        from notifications.services.appointments import appointment_messenger
        from notifications.services.erasure import members_erase
        from notifications.services.journeys import journey_event_sink, journey_events_sink
        from notifications.webhooks import esp_tracking_received

        promotion.register("notifications.MessageTemplate", natural_key=("environment", "key"))
        promotion.register("notifications.Journey", natural_key=("environment", "name"))
        events.register_sink(journey_event_sink, batch=journey_events_sink)
        tracking.connect(esp_tracking_received, dispatch_uid="notifications.esp_tracking")
        messaging.register_messenger(appointment_messenger)
        messaging.register_account_mailer(account_mailer)
        erasure.register(members_erase)
        metrics.register_metric(
            "delivery_failure_rate",
            delivery_failure_rate,
            description="Share of deliveries that failed or went dead (of those finished).",
            value_range=metrics.SHARE,
        )
