from django.apps import AppConfig


class HomesConfig(AppConfig):
    name = "homes"
    verbose_name = "Members and homes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from homes import demo  # noqa: F401  (registers the demo members step)
