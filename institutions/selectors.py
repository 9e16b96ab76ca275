"""Reads about institutions and staff access."""

from __future__ import annotations

from django.db.models import QuerySet
from django_scopes import scopes_disabled

from institutions import page_cache
from institutions.models import AuditEntry, Branding, Environment, Institution, StaffRole

BRANDING_CACHE_SECONDS = 300


def branding_cache_key(environment_id: int) -> str:
    return f"branding:{environment_id}"


def environment_branding(environment: Environment) -> Branding | None:
    """The environment's branding, cached (every member page and email needs it)."""
    key = branding_cache_key(environment.pk)
    branding = page_cache.get(environment.pk, key)
    if branding is None:
        with scopes_disabled():
            branding = Branding.objects.filter(environment=environment).first()
        if branding is not None:
            page_cache.store(environment.pk, key, branding, BRANDING_CACHE_SECONDS)
    return branding


def staff_institutions(user) -> QuerySet[Institution]:
    """Institutions a staff user may see: all for superusers, else those they hold a role in."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Institution.objects.none()
    if user.is_superuser:
        return Institution.objects.all()
    return Institution.objects.filter(staff_roles__user=user).distinct()


def staff_environments(user) -> QuerySet[Environment]:
    return Environment.objects.select_related("institution").filter(
        institution__in=staff_institutions(user)
    )


def staff_roles(user, institution: Institution) -> frozenset[str]:
    """The roles a user holds at an institution (all of them for superusers)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return frozenset(StaffRole.Role.values)
    cache = getattr(user, "_chimney_roles", None)
    if cache is None:
        cache = user._chimney_roles = {}
    if institution.pk not in cache:
        cache[institution.pk] = frozenset(
            StaffRole.objects.filter(user=user, institution=institution).values_list(
                "role", flat=True
            )
        )
    return cache[institution.pk]


def granted_roles(institution: Institution, user_ids) -> dict[int, frozenset[str]]:
    """The roles each of these users is granted at the institution, read now.

    Unlike `staff_roles`: nothing implied for superusers (a platform operator holds no
    institution's role until granted one), nothing for a deactivated account, and no
    per-request cache, for decisions that must see a role revoked a moment ago.
    """
    held: dict[int, set[str]] = {}
    rows = StaffRole.objects.filter(
        institution=institution, user_id__in=set(user_ids), user__is_active=True
    ).values_list("user_id", "role")
    for user_id, role in rows:
        held.setdefault(user_id, set()).add(role)
    return {user_id: frozenset(roles) for user_id, roles in held.items()}


def users_with_role(institution: Institution, role: str):
    from django.contrib.auth import get_user_model

    return (
        get_user_model()
        .objects.filter(
            is_active=True, staff_roles__institution=institution, staff_roles__role=role
        )
        .distinct()
    )


def audit_entries(institution: Institution) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(institution=institution).select_related("actor", "environment")
