"""Chimney's admin site: a second factor, and one institution environment at a time."""

from django.db import transaction
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import path
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

from institutions.middleware import ADMIN_ENVIRONMENT_SESSION_KEY
from institutions.models import AuditEntry
from institutions.selectors import staff_environments, staff_roles
from institutions.services import audit_record
from institutions.services.audit import REDACTED


class StaffLoginForm(OTPAdminAuthenticationForm):
    """Username, password and the TOTP code in one form."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # One TOTP device per staff member: the token is checked against it, no picker.
        self.fields.pop("otp_device", None)
        self.fields.pop("otp_challenge", None)
        self.fields["otp_token"].label = "Authenticator code"

    def _chosen_device(self, user):
        from django_otp.plugins.otp_totp.models import TOTPDevice

        return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


class ChimneyAdminSite(OTPAdminSite):
    site_header = "Chimney administration"
    site_title = "Chimney"
    index_title = "Configuration and members"
    login_form = StaffLoginForm

    def __init__(self, name="admin"):
        # OTPAdminSite names itself "otpadmin"; keep the usual "admin" URL namespace.
        super().__init__(name)

    def has_permission(self, request):
        return super().has_permission(request) and (
            request.user.is_superuser or staff_environments(request.user).exists()
        )

    def each_context(self, request):
        context = super().each_context(request)
        environment = getattr(request, "admin_environment", None)
        context["chimney_environment"] = environment
        context["chimney_roles"] = (
            sorted(staff_roles(request.user, environment.institution)) if environment else []
        )
        if getattr(request.user, "is_authenticated", False):
            context["chimney_environments"] = list(staff_environments(request.user))
        return context

    @method_decorator(sensitive_post_parameters())
    def password_change(self, request, extra_context=None):
        """Django's page for changing one's own password, audited like a password an
        operator sets in the user admin (the hash never: only that it changed)."""
        with transaction.atomic():
            response = super().password_change(request, extra_context)
            # The page redirects only once the new password is saved. (Comparing hashes
            # would also catch Django upgrading the old hash while checking it, on a form
            # that was then refused.)
            if request.method == "POST" and response.status_code == 302:
                audit_record(
                    action=AuditEntry.Action.UPDATE,
                    actor=request.user,
                    obj=request.user,
                    changes={"password": {"before": REDACTED, "after": REDACTED}},
                    reason="own password changed in the admin",
                )
        return response

    def get_urls(self):
        urls = [
            path(
                "environment/",
                self.admin_view(require_POST(self.switch_environment)),
                name="switch_environment",
            )
        ]
        return urls + super().get_urls()

    def switch_environment(self, request):
        """Select the institution environment this staff member edits."""
        try:
            wanted = int(request.POST.get("environment", ""))
        except ValueError:
            return HttpResponseBadRequest("Choose an environment.")
        if not staff_environments(request.user).filter(pk=wanted).exists():
            return HttpResponseBadRequest("You have no access to that environment.")
        request.session[ADMIN_ENVIRONMENT_SESSION_KEY] = wanted
        # Object ids differ between environments: start again from the index.
        return redirect("admin:index")
