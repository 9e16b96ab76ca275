"""Member pages: server-rendered, branded, host-scoped (one environment per host)."""

from functools import wraps
from urllib.parse import urlencode, urlsplit

from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from homes.forms import MagicLinkRequestForm
from homes.middleware import (
    member_login,
    member_logout,
    settle_member,
)
from homes.services import (
    LoginError,
    launch_link_login,
    magic_link_issue,
    magic_link_redeem,
    member_visit_redeem,
)
from homes.services.login import tile_link_redeem
from institutions.clients import client_address
from institutions.pages import not_an_object_page


def member_required(view):
    """Member pages need a signed-in member of this host's environment.

    Their answers are the member's own: no shared cache (a proxy, a CDN) may keep them."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if settle_member(request) is None:
            query = urlencode({"next": request.get_full_path()})
            return redirect(f"{reverse('homes:login')}?{query}")
        response = view(request, *args, **kwargs)
        patch_cache_control(response, private=True)
        return response

    return wrapper


def _login_error(request, error: LoginError, status: int = 400):
    return render(request, "homes/login_error.html", {"error": error}, status=status)


def _safe_path(request, target, default="/") -> str:
    """`target` if it is a path on this host (no scheme, no host), else `default`."""
    if (
        isinstance(target, str)
        and target.startswith("/")
        and not urlsplit(target).netloc
        and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return target
    return default


def _safe_next(request, default="/") -> str:
    return _safe_path(request, request.GET.get("next") or request.POST.get("next"), default)


@require_http_methods(["GET", "POST"])
def login(request):
    form = MagicLinkRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        # The page asked for before signing in is opened after the magic link, on whatever
        # device it is opened: the link's row keeps it (the email carries no address).
        next_path = _safe_next(request)
        try:
            magic_link_issue(
                environment=request.environment,
                email=form.cleaned_data["email"],
                client=client_address(request),
                next_path=next_path if next_path != "/" else "",
            )
        except LoginError as error:
            return _login_error(request, error, status=429)
        return render(request, "homes/login_sent.html", {"email": form.cleaned_data["email"]})
    status = 400 if request.method == "POST" else 200
    return render(
        request, "homes/login.html", {"form": form, "next": _safe_next(request)}, status=status
    )


@not_an_object_page
@require_http_methods(["GET", "POST"])
def magic_link(request, token: str):
    # GET shows a button; only the POST spends the link, so mail scanners that
    # prefetch links cannot use it up.
    if request.method == "GET":
        return render(request, "homes/magic_link_confirm.html", {"token": token})
    try:
        member, asked_for = magic_link_redeem(environment=request.environment, token=token)
    except LoginError as error:
        return _login_error(request, error)
    next_path = _safe_path(request, asked_for or None)
    member_login(request, member)
    return HttpResponseRedirect(next_path)


def launch(request):
    token = request.GET.get("token", "")
    try:
        member = launch_link_login(environment=request.environment, token=token)
    except LoginError as error:
        return _login_error(request, error)
    member_login(request, member)
    return HttpResponseRedirect(_safe_next(request))


@not_an_object_page
def tile_sign_in(request, token: str):
    """A button of the tile shown by launch token, opened at the top level: sign the member
    in (here the session cookie is first-party) and open the page the button names."""
    try:
        member, next_path = tile_link_redeem(environment=request.environment, token=token)
    except LoginError as error:
        return _login_error(request, error)
    member_login(request, member)
    return HttpResponseRedirect(_safe_path(request, next_path))


@not_an_object_page
def visit(request, token: str):
    try:
        member, staff = member_visit_redeem(environment=request.environment, token=token)
    except LoginError as error:
        return _login_error(request, error)
    member_login(request, member, visited_by=staff)
    return redirect("homes:home")


@require_POST
def logout(request):
    member_logout(request)
    return render(request, "homes/logged_out.html")
