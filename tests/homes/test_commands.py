from io import StringIO
from urllib.parse import parse_qs, urlparse

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from homes.middleware import MEMBER_SESSION_KEY
from tests.factories import MemberFactory


@pytest.mark.django_db
def test_launch_link_command__runs_in_the_chosen_environment_and_signs_in(tenant):
    member = MemberFactory(environment=tenant.staging, external_id="S-1")
    MemberFactory(environment=tenant.production, external_id="S-1")  # same id, other tenant
    out = StringIO()
    call_command(
        "launch_link",
        institution=tenant.institution.slug,
        environment="staging",
        external_id="S-1",
        stdout=out,
    )
    url = urlparse(out.getvalue().strip())
    assert url.netloc == tenant.staging.host
    client = Client(HTTP_HOST=tenant.staging.host)
    response = client.get(url.path, {"token": parse_qs(url.query)["token"][0]})
    assert response.status_code == 302
    assert client.session[MEMBER_SESSION_KEY] == member.pk


@pytest.mark.django_db
def test_launch_link_command__unknown_institution_or_bad_minutes__is_refused(tenant):
    with pytest.raises(CommandError, match="No institution"):
        call_command("launch_link", institution="nope", environment="staging", external_id="X")
    with pytest.raises(CommandError, match="between 1 and 5"):
        call_command(
            "launch_link",
            institution=tenant.institution.slug,
            environment="staging",
            external_id="X",
            minutes=60,
        )


@pytest.mark.django_db
def test_launch_link_command__tile__prints_the_address_digital_banking_frames(tenant):
    MemberFactory(environment=tenant.staging, external_id="S-2")
    out = StringIO()
    call_command(
        "launch_link",
        institution=tenant.institution.slug,
        environment="staging",
        external_id="S-2",
        tile=True,
        stdout=out,
    )
    url = urlparse(out.getvalue().strip())
    assert (url.netloc, url.path) == (tenant.staging.host, "/tile/")
    client = Client(HTTP_HOST=tenant.staging.host)
    token = parse_qs(url.query)["token"][0]
    assert client.get(url.path, {"token": token}).status_code == 200
    assert MEMBER_SESSION_KEY not in client.session  # figures from the token, no session
    assert client.get(url.path, {"token": token}).status_code == 400  # single use
