"""Members' analytics consent on member pages: the answer, remembered in the session.

Member pages ask on every view whether to include the event beacon; the answer is read
once per session (one query) and kept there, and the consent page updates it when the
member answers. The beacon endpoint reads the database itself: a page rendered before a
member said no on another device cannot record anything after it.
"""

from __future__ import annotations

from flags import selectors

SESSION_KEY = "chimney_analytics_consent"
GRANTED, REFUSED, UNANSWERED = "granted", "refused", ""


def state_of(consent) -> str:
    if consent is None:
        return UNANSWERED
    return GRANTED if consent.granted else REFUSED


def member_consent(request) -> str:
    """The signed-in member's answer: "granted", "refused" or "" (never asked)."""
    member = request.member
    session = request.session
    memo = session.get(SESSION_KEY)
    if isinstance(memo, list) and len(memo) == 2 and memo[0] == member.pk:
        return memo[1]
    state = state_of(selectors.analytics_consent_of(request.environment, member))
    session[SESSION_KEY] = [member.pk, state]
    return state


def staff_visit(request) -> bool:
    """Staff looking at member pages as the member (homes' staff visit)."""
    from homes.middleware import VISITED_BY_SESSION_KEY

    return bool(request.session.get(VISITED_BY_SESSION_KEY))


def visit_not_recorded(request) -> bool:
    """A staff visit as a member who is not a test member: what staff do there is not the
    member's activity. As a test member (in production, the only members staff may visit)
    it is that test member's test activity, recorded with is_test like the rest."""
    return staff_visit(request) and not request.member.is_test


def remember(request, granted: bool) -> None:
    request.session[SESSION_KEY] = [request.member.pk, GRANTED if granted else REFUSED]
