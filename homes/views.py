"""Member pages: server-rendered, branded, host-scoped (one environment per host)."""

from functools import wraps

from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from homes.forms import MagicLinkRequestForm
from homes.middleware import member_login, member_logout, settle_member
from homes.services import (
    LoginError,
    launch_link_login,
    magic_link_issue,
    magic_link_redeem,
    member_visit_redeem,
)
from institutions.clients import client_address
from institutions.pages import not_an_object_page


def member_required(view):
    """Member pages need a signed-in member of this host's environment."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if settle_member(request) is None:
            return redirect(f"{reverse('homes:login')}?next={request.get_full_path()}")
        return view(request, *args, **kwargs)

    return wrapper


def _login_error(request, error: LoginError, status: int = 400):
    return render(request, "homes/login_error.html", {"error": error}, status=status)


def _safe_next(request, default="/") -> str:
    target = request.GET.get("next") or request.POST.get("next") or default
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@require_http_methods(["GET", "POST"])
def login(request):
    form = MagicLinkRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            magic_link_issue(
                environment=request.environment,
                email=form.cleaned_data["email"],
                client=client_address(request),
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
        member = magic_link_redeem(environment=request.environment, token=token)
    except LoginError as error:
        return _login_error(request, error)
    member_login(request, member)
    return redirect("homes:home")


def launch(request):
    token = request.GET.get("token", "")
    try:
        member = launch_link_login(environment=request.environment, token=token)
    except LoginError as error:
        return _login_error(request, error)
    member_login(request, member)
    return HttpResponseRedirect(_safe_next(request))


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
