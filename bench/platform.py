"""Platform figures: a member page and a tenant task, beside the bare baselines."""

from __future__ import annotations

from bench.harness import Context, Figure


def _demo_member(ctx: Context):
    from django.core.management import call_command
    from django_scopes import scopes_disabled

    from homes.models import Member
    from institutions.models import Environment

    call_command("demo_load", stdout=open("/dev/null", "w"))  # noqa: SIM115
    with scopes_disabled():
        environment = Environment.objects.get(institution__slug="cascade", kind="production")
        member = Member.objects.filter(environment=environment).first()
    return environment, member


def _member_cookie(member) -> str:
    from importlib import import_module

    from django.conf import settings

    from homes.middleware import MEMBER_ENV_SESSION_KEY, MEMBER_SESSION_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[MEMBER_SESSION_KEY] = member.pk
    session[MEMBER_ENV_SESSION_KEY] = member.environment_id
    session.create()
    return f"sessionid={session.session_key}"


def run(ctx: Context) -> list[Figure]:
    environment, member = _demo_member(ctx)
    bare = ctx.baseline("bare_view")
    with ctx.gunicorn() as port:
        home = ctx.http_rate(
            port,
            "/",
            host=environment.host,
            headers={"Cookie": _member_cookie(member)},
        )
    return [
        Figure(
            "member home page (signed in, tenant host)",
            home,
            "requests/s",
            "bare single-query view",
            bare,
            target_ratio=None,
        ),
    ]
