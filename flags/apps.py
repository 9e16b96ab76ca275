from django.apps import AppConfig


class FlagsConfig(AppConfig):
    name = "flags"
    verbose_name = "Testing in production"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed

        # declarations, the demo step
        from flags import consent, demo, metric_providers, plans, registry  # noqa: F401
        from flags.evaluation import snapshot_invalidate
        from flags.models import Flag
        from flags.services.erasure import members_erase
        from flags.services.events import record_member_event, record_member_events
        from homes import cached_pages, erasure
        from institutions import events, page_cache, promotion

        events.register_sink(record_member_event, batch=record_member_events)
        page_cache.register(plans.plan_key)  # a page view's event is checked against it
        erasure.register(members_erase)
        # The analytics beacon of every member page shows or not by the member's answer.
        cached_pages.vary_on(consent.member_consent)
        metric_providers.register()
        # Flags' targeting is promoted; the kill switch and named members are not (members
        # differ between environments; a kill in production must survive a release).
        promotion.register(
            "flags.Flag",
            natural_key=("environment", "name"),
            exclude=("members", "killed", "killed_at", "killed_reason", "created", "modified"),
        )
        promotion.register("flags.DataPlanVersion", natural_key=("environment", "version"))
        promotion.register(
            "flags.Destination",
            natural_key=("environment", "name"),
            exclude=(
                "secret",
                "state",
                "cursor",
                "consecutive_failures",
                "last_error",
                "last_success_at",
            ),
        )
        promotion.register("flags.OracleRule", natural_key=("environment", "group", "name"))
        promotion.register("flags.TestPlan", natural_key=("environment", "name"))

        def members_changed(sender, instance, **kwargs):
            if isinstance(instance, Flag):
                snapshot_invalidate(instance.environment_id)

        m2m_changed.connect(
            members_changed, sender=Flag.members.through, dispatch_uid="flags_members"
        )
