"""System checks of the deployment's settings (run by manage.py check and at startup)."""

from __future__ import annotations

from anymail.utils import get_anymail_setting
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security)
def provider_webhook_secret_check(app_configs, **kwargs):
    """A provider's webhooks report bounces and spam complaints, which stop a member's email:
    they are served only with a secret, and a provider without one is a configuration error
    (a warning while DEBUG is on)."""
    backend = getattr(settings, "EMAIL_BACKEND", "") or ""
    if not backend.startswith("anymail.") or get_anymail_setting("webhook_secret", default=None):
        return []
    level, code = (Warning, "W001") if settings.DEBUG else (Error, "E001")
    return [
        level(
            "An email provider (django-anymail) sends the email, but ANYMAIL has no "
            "WEBHOOK_SECRET: its bounce and complaint webhooks are switched off (answer 404).",
            hint='Set ANYMAIL to include "WEBHOOK_SECRET": "user:password" and give the '
            "provider that secret with the webhook URL "
            "https://<environment host>/notifications/esp/<esp>/tracking/.",
            id=f"chimney.{code}",
        )
    ]
