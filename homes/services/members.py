from django.db import transaction

from homes.models import Member
from institutions import events
from institutions.models import Environment
from institutions.services.audit import audited_save


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
    with transaction.atomic():
        audited_save(
            member,
            actor=actor,
            actor_label=actor_label,
            environment=environment,
        )
        if member.enrollment == Member.Enrollment.ENROLLED:
            events.emit(environment=environment, name="member_enrolled", member=member)
    return member


def member_update(
    *, environment: Environment, member: Member, actor=None, actor_label="", **changes
) -> Member:
    """Change a member's own fields (validated; audited)."""
    if member.environment_id != environment.pk:
        raise ValueError("The member belongs to another environment.")
    if "email" in changes:
        changes["email"] = changes["email"].strip().lower()
    return audited_save(
        member,
        actor=actor,
        actor_label=actor_label,
        environment=environment,
        changes=changes,
    )
