"""A member page that evaluates flags with {% flag %} (tests and the overhead benchmark).

Used as TENANT_URLCONF: the real member URLs plus /flagged/?n=N, a page like the home page
that evaluates N declared flags.
"""

from django.http import HttpResponse
from django.template import Context, Template
from django.urls import include, path

from homes.views import member_required

PAGE = Template(
    "{% extends 'homes/base.html' %}{% load waffle_tags %}{% block content %}{{ block.super }}"
    "{% for name in flag_names %}{% flag name %}<p class='on'>{{ name }}</p>"
    "{% else %}<p class='off'>{{ name }}</p>{% endflag %}{% endfor %}{% endblock %}"
)


@member_required
def flagged(request):
    from django.template import RequestContext

    count = int(request.GET.get("n", 10))
    names = [f"bench_flag_{i}" for i in range(count)]
    if request.GET.get("flags"):
        names = request.GET["flags"].split(",")
    return HttpResponse(
        PAGE.render(RequestContext(request, {"member": request.member, "flag_names": names}))
    )


urlpatterns = [
    path("flagged/", flagged, name="flagged"),
    path("", include("chimney.urls_tenant")),
]

__all__ = ["Context", "urlpatterns"]
