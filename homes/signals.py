"""Cache invalidation after commit, whoever wrote the row (a service, a release deploy), and
the offer matches recomputed when a release changes what they are computed from."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from homes.appointment_selectors import appointments_bookable_forget
from homes.models import (
    AppointmentSettings,
    HomeSettings,
    LoanOfficer,
    OfferProduct,
    OfficerAvailability,
)
from homes.selectors import dashboard_cards_key, home_settings_cache_key
from institutions import page_cache, promotion


def _drop_after_commit(key: str) -> None:
    transaction.on_commit(lambda: page_cache.delete(key))


@receiver([post_save, post_delete], sender=HomeSettings)
def home_settings_changed(sender, instance, **kwargs):
    _drop_after_commit(home_settings_cache_key(instance.environment_id))
    _drop_after_commit(dashboard_cards_key(instance.environment_id))


@receiver([post_save, post_delete], sender=OfferProduct)
def offer_product_changed(sender, instance, **kwargs):
    # Dashboard cards show the products (title, terms) before the recompute has run.
    _drop_after_commit(dashboard_cards_key(instance.environment_id))


@receiver([post_save, post_delete], sender=AppointmentSettings)
@receiver([post_save, post_delete], sender=LoanOfficer)
@receiver([post_save, post_delete], sender=OfficerAvailability)
def bookable_changed(sender, instance, **kwargs):
    appointments_bookable_forget(instance.environment_id)


#: Configuration the stored equity and offer matches are computed from.
MATCH_INPUTS = frozenset({"homes.OfferProduct", "homes.HomeSettings"})


@receiver(promotion.promoted)
def configuration_promoted(sender, environment, labels=frozenset(), **kwargs):
    # A release (deploy or rollback) writes products and settings with plain saves, past
    # offer_product_save: queue the same recompute, so production's matches follow.
    if MATCH_INPUTS & set(labels):
        from homes.tasks import recompute_matches

        environment_id = environment.pk
        transaction.on_commit(lambda: recompute_matches.delay(environment_id))
