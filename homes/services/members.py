from django.db import transaction

from homes.models import Member
from institutions.models import AuditEntry, Environment
from institutions.services import audit_record, model_snapshot


def member_create(
    *,
    environment: Environment,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    external_id: str = "",
    is_test: bool = False,
    enrollment: str = Member.Enrollment.PENDING,
    actor=None,
    actor_label: str = "",
) -> Member:
    """Create a member in an environment (validated; audited)."""
    member = Member(
        environment=environment,
        email=email.strip().lower(),
        first_name=first_name,
        last_name=last_name,
        external_id=external_id,
        is_test=is_test,
        enrollment=enrollment,
    )
    member.full_clean(exclude=["environment"])
    with transaction.atomic():
        member.save()
        audit_record(
            action=AuditEntry.Action.CREATE,
            actor=actor,
            actor_label=actor_label,
            environment=environment,
            obj=member,
            after=model_snapshot(member),
        )
    return member


def member_update(
    *, environment: Environment, member: Member, actor=None, actor_label="", **changes
) -> Member:
    """Change a member's own fields (validated; audited)."""
    if member.environment_id != environment.pk:
        raise ValueError("The member belongs to another environment.")
    # The admin form has already set the new values on `member`: read "before" from the table.
    before = model_snapshot(Member._base_manager.get(pk=member.pk))
    for name, value in changes.items():
        setattr(member, name, value.strip().lower() if name == "email" else value)
    member.full_clean(exclude=["environment"])
    with transaction.atomic():
        member.save()
        audit_record(
            action=AuditEntry.Action.UPDATE,
            actor=actor,
            actor_label=actor_label,
            environment=environment,
            obj=member,
            before=before,
            after=model_snapshot(member),
        )
    return member
