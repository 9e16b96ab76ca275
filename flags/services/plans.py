"""Writes about data plans and members' analytics consent."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from flags import plans
from flags.models import AnalyticsConsent, DataPlanVersion
from institutions.models import AuditEntry
from institutions.services import audit_record, model_snapshot, tenant_full_clean


def data_plan_version_save(*, environment, plan: DataPlanVersion, actor) -> DataPlanVersion:
    """Save a plan version after checking every schema (a bad one is refused, naming it)."""
    plans.validate_points(plan.points)
    if plan.version is None:
        latest = DataPlanVersion.objects.filter(environment=environment).aggregate(
            m=Max("version")
        )["m"]
        plan.version = (latest or 0) + 1
    plan.environment = environment
    tenant_full_clean(plan)
    previous = (
        DataPlanVersion._base_manager.filter(pk=plan.pk, environment=environment).first()
        if plan.pk
        else None
    )
    with transaction.atomic():
        plan.save()
        audit_record(
            action=AuditEntry.Action.UPDATE if previous else AuditEntry.Action.CREATE,
            actor=actor,
            environment=environment,
            obj=plan,
            before=model_snapshot(previous) if previous else None,
            after=model_snapshot(plan),
        )
    return plan


def data_plan_version_create(
    *,
    environment,
    points: dict,
    actor,
    description: str = "",
    unplanned="allow",
    invalid="quarantine",
) -> DataPlanVersion:
    if not isinstance(points, dict):
        raise ValidationError({"points": "The plan must be a JSON object."})
    plan = DataPlanVersion(
        environment=environment,
        points=points,
        description=description,
        unplanned=unplanned,
        invalid=invalid,
    )
    return data_plan_version_save(environment=environment, plan=plan, actor=actor)


ANALYTICS_CONSENT_QUESTION = (
    "May we use how you use these pages (which pages you open and which buttons you use) "
    "to improve them?"
)
ANALYTICS_CONSENT_ANSWERS = {
    True: "Yes, use how I use these pages to improve them.",
    False: "No, do not use how I use these pages.",
}


def analytics_consent_text(granted: bool) -> str:
    """The words the member sees for an answer (stored with it, like other consents)."""
    return f"{ANALYTICS_CONSENT_QUESTION} {ANALYTICS_CONSENT_ANSWERS[bool(granted)]}"


def analytics_consent_set(
    *, environment, member, granted: bool, source: str = "", text_shown: str = "", actor=None
) -> AnalyticsConsent:
    """Record a member's analytics consent answer (the latest answer wins); audited, with
    the words shown."""
    if member.environment_id != environment.pk:
        raise ValidationError("The member belongs to another environment.")
    with transaction.atomic():
        consent, _ = AnalyticsConsent.objects.update_or_create(
            environment=environment,
            member=member,
            defaults={
                "granted": granted,
                "source": source[:40],
                "text_shown": text_shown or analytics_consent_text(granted),
            },
        )
        audit_record(
            action=AuditEntry.Action.UPDATE,
            actor=actor,
            actor_label="" if actor else f"member {member.pk}",
            environment=environment,
            obj=consent,
            after=model_snapshot(consent),
        )
    return consent
