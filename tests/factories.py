"""factory_boy factories, and the registry the generic isolation tests use.

Every tenant-owned model must have a factory in TENANT_FACTORIES: the isolation and
scoping tests create one row per tenant through it (a missing one fails those tests).
"""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice

from homes.models import MagicLinkToken, Member
from institutions.models import Branding, Environment, Institution, UsedNonce
from institutions.services import institution_create, staff_role_grant
from institutions.tenancy import environment_scope


class InstitutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Institution

    slug = factory.Sequence(lambda n: f"inst{n}")
    display_name = factory.Sequence(lambda n: f"Institution {n} Credit Union")
    legal_name = factory.LazyAttribute(lambda o: o.display_name)
    nmls_id = factory.Sequence(lambda n: f"{400000 + n}")
    time_zone = "America/New_York"
    postal_address = "1 Main Street, Springfield, ST 00000"

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return institution_create(**kwargs)


def environment_of(institution: Institution, kind: str = "staging") -> Environment:
    return institution.environments.get(kind=kind)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@staff.test")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def totp(self, create, extracted, **kwargs):
        if create:
            TOTPDevice.objects.create(user=self, name="authenticator", confirmed=True)
            self.save()


def staff_user(institution: Institution | None = None, *roles: str, **kwargs):
    """A staff user holding the given roles at the institution, with a TOTP device."""
    user = UserFactory(**kwargs)
    for role in roles:
        staff_role_grant(institution=institution, user=user, role=role, actor=None)
    return user


class TenantFactory(factory.django.DjangoModelFactory):
    """Creates rows inside their environment's scope."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with environment_scope(kwargs["environment"]):
            return super()._create(model_class, *args, **kwargs)


class MemberFactory(TenantFactory):
    class Meta:
        model = Member

    email = factory.Sequence(lambda n: f"member{n}@example.test")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    external_id = factory.Sequence(lambda n: f"EXT{n:06d}")
    enrollment = Member.Enrollment.ENROLLED


class MagicLinkTokenFactory(TenantFactory):
    class Meta:
        model = MagicLinkToken

    member = factory.LazyAttribute(lambda o: MemberFactory(environment=o.environment))
    token_hash = factory.Sequence(lambda n: f"{n:064x}")
    expires_at = factory.Faker("future_datetime", tzinfo=__import__("datetime").UTC)


class UsedNonceFactory(TenantFactory):
    class Meta:
        model = UsedNonce

    purpose = "test"
    nonce = factory.Sequence(lambda n: f"nonce-{n}")
    expires_at = factory.Faker("future_datetime", tzinfo=__import__("datetime").UTC)


def branding_factory(environment: Environment, **kwargs) -> Branding:
    """Branding exists once per environment (made with the institution): return it."""
    with environment_scope(environment):
        return Branding.objects.get(environment=environment)


#: model -> callable(environment=...) that creates (or returns) one row in that environment.
TENANT_FACTORIES = {
    Member: MemberFactory,
    MagicLinkToken: MagicLinkTokenFactory,
    UsedNonce: UsedNonceFactory,
    Branding: lambda environment, **kw: branding_factory(environment, **kw),
}


def tenant_factory(model):
    """Register a factory for a tenant model (apps keep theirs in tests/<app>/factories.py)."""

    def decorator(factory_callable):
        TENANT_FACTORIES[model] = factory_callable
        return factory_callable

    return decorator


def _load_app_factories() -> None:
    import importlib
    import pkgutil
    from pathlib import Path

    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.ispkg and (Path(__file__).parent / info.name / "factories.py").exists():
            importlib.import_module(f"tests.{info.name}.factories")


_load_app_factories()
