"""Declarations on member-page views that the generic isolation tests read.

A tenant-host URL with a parameter is either an object page (it names the tenant model
whose id it takes, and must answer 404 for another tenant's object) or a token page.
"""


def tenant_object_page(model):
    """Mark a view whose URL parameter is the id of a `model` row of this environment."""

    def decorator(view):
        view.tenant_model = model
        return view

    return decorator


def not_an_object_page(view):
    """Mark a view whose URL parameter is a token, not a tenant object's id."""
    view.not_an_object_page = True
    return view
