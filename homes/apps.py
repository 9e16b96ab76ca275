from django.apps import AppConfig


class HomesConfig(AppConfig):
    name = "homes"
    verbose_name = "Members and homes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from homes import demo, signals  # noqa: F401  (demo steps; cache invalidation)
        from homes.appointment_selectors import bookable_cache_key
        from homes.selectors import dashboard_cards_key, home_settings_cache_key
        from institutions import page_cache, promotion

        # Read by every member dashboard.
        page_cache.register(home_settings_cache_key)
        page_cache.register(bookable_cache_key)
        page_cache.register(dashboard_cards_key)

        # Configuration promoted from staging to production by release.
        promotion.register("homes.HomeSettings", natural_key=("environment",))
        promotion.register(
            "homes.OfferProduct", natural_key=("environment", "name"), exclude=("updated_at",)
        )
        # How members book appointments; officers (people, with their calendar logins) are
        # per environment and never promoted.
        promotion.register("homes.AppointmentSettings", natural_key=("environment",))
