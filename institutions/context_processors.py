from django_scopes import scopes_disabled

from institutions.models import Branding


def tenant(request):
    """Branding of the request's environment for member templates."""
    environment = getattr(request, "environment", None)
    if environment is None:
        return {}
    with scopes_disabled():
        branding = Branding.objects.filter(environment=environment).first()
    return {
        "environment": environment,
        "institution": environment.institution,
        "branding": branding,
    }
