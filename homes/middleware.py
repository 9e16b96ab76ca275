"""Attach the signed-in member (if any) of this host's environment to the request."""

from django.utils import timezone
from django.utils.functional import SimpleLazyObject, empty

MEMBER_SESSION_KEY = "chimney_member_id"
MEMBER_ENV_SESSION_KEY = "chimney_member_environment_id"
VISITED_BY_SESSION_KEY = "chimney_member_visited_by"


def _signed_in(request):
    from homes.selectors import signed_in

    environment = getattr(request, "environment", None)
    member_id = request.session.get(MEMBER_SESSION_KEY)
    # A session from another environment never counts here (hosts do not share cookies
    # anyway, but a copied cookie must not cross tenants).
    if environment is None or not member_id:
        return None
    if request.session.get(MEMBER_ENV_SESSION_KEY) != environment.pk:
        return None
    found = signed_in(environment, member_id, now=timezone.now())
    visited_by = request.session.get(VISITED_BY_SESSION_KEY)
    if found is not None and visited_by is not None:
        from homes.services.login import member_visit_continues

        # A staff visit lasts only while it could begin: a revoked role, a deactivated
        # account or a production member no longer a test member ends it.
        if not member_visit_continues(
            environment=environment, staff_id=visited_by, member=found.member
        ):
            request.session.flush()
            return None
    return found


def _member(request):
    found = request.signed_in
    return found.member if found else None


class MemberMiddleware:
    """request.member: the signed-in member of this host's environment, or None.
    request.signed_in: the member with their home, offer states and whether they have
    an upcoming appointment (homes.selectors.SignedIn), read with the member in one query
    when first used."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.signed_in = SimpleLazyObject(lambda: _signed_in(request))
        request.member = SimpleLazyObject(lambda: _member(request))
        return self.get_response(request)


def settle_member(request):
    """Replace the lazy request.signed_in and request.member by what they stand for (read
    now if not read yet) and return the member or None.

    A member page reads dozens of the member's attributes, and each read through a
    SimpleLazyObject costs three Python calls and a caught AttributeError; once a page
    knows it needs the member, the plain objects serve the rest of the request.
    """
    signed_in = request.signed_in
    if isinstance(signed_in, SimpleLazyObject):
        if signed_in._wrapped is empty:
            signed_in._setup()
        signed_in = signed_in._wrapped
        request.signed_in = signed_in
        request.member = signed_in.member if signed_in else None
    return request.member


def member_login(request, member, *, visited_by=None) -> None:
    """Start a member session (a new session key, so a planted one is useless)."""
    request.session.cycle_key()
    request.session[MEMBER_SESSION_KEY] = member.pk
    request.session[MEMBER_ENV_SESSION_KEY] = member.environment_id
    if visited_by is not None:
        request.session[VISITED_BY_SESSION_KEY] = visited_by.pk
    else:
        request.session.pop(VISITED_BY_SESSION_KEY, None)


def member_logout(request) -> None:
    request.session.flush()
