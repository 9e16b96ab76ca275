from institutions.selectors import environment_branding


def tenant(request):
    """Branding of the request's environment for member templates."""
    environment = getattr(request, "environment", None)
    if environment is None:
        return {}
    return {
        "environment": environment,
        "institution": environment.institution,
        "branding": environment_branding(environment),
    }
