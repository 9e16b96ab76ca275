from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class InstitutionsConfig(AppConfig):
    default = True
    name = "institutions"
    verbose_name = "Institutions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from institutions import page_cache, promotion, signals  # noqa: F401  (receivers)
        from institutions.selectors import branding_cache_key

        page_cache.register(branding_cache_key)  # every member page shows the branding

        promotion.register("institutions.Branding", natural_key=("environment",))


class ChimneyAdminConfig(admin_apps.AdminConfig):
    default = False
    """The Django admin, replaced by Chimney's scoped admin site (staff see their institution)."""

    default_site = "institutions.admin_site.ChimneyAdminSite"
