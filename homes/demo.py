"""Demo members: mock ones in staging, real-looking ones (and two test members) in production."""

import random

from homes.models import Member
from homes.services import member_create
from institutions.demo import DemoReport, register_demo_step
from institutions.models import Institution
from institutions.tenancy import environment_scope

FIRST = [
    "Avery",
    "Jordan",
    "Riley",
    "Morgan",
    "Casey",
    "Taylor",
    "Quinn",
    "Harper",
    "Rowan",
    "Emerson",
]
LAST = [
    "Nguyen",
    "Garcia",
    "Okafor",
    "Lindqvist",
    "Patel",
    "Moreau",
    "Kowalski",
    "Haddad",
    "Silva",
    "Brooks",
]


DEMO_MEMBERS = 12


def demo_external_ids(environment) -> list[str]:
    """The external ids of the members the demo makes in an environment."""
    return [f"{environment.kind[:1].upper()}{1000 + i}" for i in range(DEMO_MEMBERS)]


def demo_members_of(environment):
    """The members the demo made in this environment (by their external ids), oldest
    first; members who came in since are not the demo's to change."""
    return Member.objects.filter(
        environment=environment, external_id__in=demo_external_ids(environment)
    ).order_by("pk")


def demo_members(institution: Institution, report: DemoReport) -> None:
    rng = random.Random(institution.slug)  # noqa: S311  (reproducible demo data, not secrets)
    for environment in institution.environments.all():
        with environment_scope(environment):
            if not Member.objects.exists():
                _members_create(environment, institution, rng)
            sample = Member.objects.filter(is_test=True).order_by("id").first()
            if sample is not None:
                report.add(
                    f"  member ({environment.kind}, test={sample.is_test}): {sample.email} — "
                    f"sign in at {environment.base_url}/login/ (the worker prints the emailed "
                    "link)"
                )


def _members_create(environment, institution: Institution, rng: random.Random) -> None:
    domain = "staging.invalid" if environment.is_staging else f"members.{institution.slug}.example"
    for i, external_id in enumerate(demo_external_ids(environment)):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        member_create(
            environment=environment,
            email=f"{first}.{last}.{i}@{domain}".lower(),
            first_name=first,
            last_name=last,
            external_id=external_id,
            is_test=environment.is_staging or i < 2,
            enrollment=Member.Enrollment.ENROLLED,
            actor_label="demo",
        )


register_demo_step(demo_members, order=10)


def _demo_homes(institution: Institution, report: DemoReport) -> None:
    from homes.demo_homes import demo_homes

    demo_homes(institution, report)


register_demo_step(_demo_homes, order=20)


def _demo_appointments(institution: Institution, report: DemoReport) -> None:
    from homes.demo_appointments import demo_appointments

    demo_appointments(institution, report)


# After notifications (40): its demo settings must exist before a booking sends anything.
register_demo_step(_demo_appointments, order=50)
