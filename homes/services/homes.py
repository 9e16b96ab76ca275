"""Properties, liens, home settings and offer products: validated, audited writes that keep
equity and offer matches current."""

from __future__ import annotations

from django.db import transaction

from homes.models import HomeSettings, Lien, OfferProduct, Property
from homes.services.recompute import properties_recompute
from institutions.models import AuditEntry
from institutions.services import audit_record, model_snapshot, tenant_full_clean


def _save(environment, obj, actor, actor_label=""):
    """full_clean (errors name the field), save and audit; the caller holds a transaction.
    Returns the row as it was before (None for a new one)."""
    if obj.pk is not None and obj.environment_id not in (None, environment.pk):
        raise ValueError("The object belongs to another environment.")
    obj.environment = environment
    tenant_full_clean(obj)
    previous = type(obj)._base_manager.filter(pk=obj.pk, environment=environment).first()
    obj.save()
    audit_record(
        action=AuditEntry.Action.UPDATE if previous else AuditEntry.Action.CREATE,
        actor=actor,
        actor_label=actor_label,
        environment=environment,
        obj=obj,
        before=model_snapshot(previous) if previous else None,
        after=model_snapshot(obj),
    )
    return previous


def property_save(*, environment, prop: Property, actor=None, actor_label="", revalue=True):
    """Create or change a property; a new or moved home is revalued, then recomputed."""
    from homes.services.valuations import property_revalue

    with transaction.atomic():
        _save(environment, prop, actor, actor_label)
        if revalue:
            property_revalue(environment=environment, prop=prop)
        else:
            properties_recompute(environment=environment, property_ids=[prop.pk])
    return prop


def lien_save(*, environment, lien: Lien, actor=None, actor_label=""):
    """Create or change a lien (validated: no negative balance, rate ≤ 100%, no future date).
    A lien moved to another home leaves the first one too: both are recomputed."""
    with transaction.atomic():
        previous = _save(environment, lien, actor, actor_label)
        homes = {lien.property_id} | ({previous.property_id} if previous else set())
        properties_recompute(environment=environment, property_ids=sorted(homes))
    return lien


def lien_delete(*, environment, lien: Lien, actor=None):
    with transaction.atomic():
        audit_record(
            action=AuditEntry.Action.DELETE,
            actor=actor,
            environment=environment,
            obj=lien,
            before=model_snapshot(lien),
        )
        property_id = lien.property_id
        lien.delete()
        properties_recompute(environment=environment, property_ids=[property_id])


def home_settings_save(*, environment, settings: HomeSettings, actor=None, actor_label=""):
    """Change an environment's home settings; offers use its rates, so matches follow."""
    with transaction.atomic():
        _save(environment, settings, actor, actor_label)
        _recompute_all_later(environment)
    return settings


def offer_product_save(*, environment, product: OfferProduct, actor=None, actor_label=""):
    """Create or change an offer product. Copy with advertising trigger terms but without
    the disclosures they require is refused (ValidationError naming what is missing)."""
    with transaction.atomic():
        _save(environment, product, actor, actor_label)
        _recompute_all_later(environment)
    return product


def offer_product_delete(*, environment, product: OfferProduct, actor=None):
    with transaction.atomic():
        audit_record(
            action=AuditEntry.Action.DELETE,
            actor=actor,
            environment=environment,
            obj=product,
            before=model_snapshot(product),
        )
        product.delete()
        _recompute_all_later(environment)


def _recompute_all_later(environment) -> None:
    from homes.tasks import recompute_matches

    transaction.on_commit(lambda: recompute_matches.delay(environment.pk))
