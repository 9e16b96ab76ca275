import pytest
from django.db import connection

from institutions import promotion
from tests.releases import models as test_models


@pytest.fixture(scope="session")
def _promotable_tables(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        test_models.create_tables(connection)


@pytest.fixture
def promotables(_promotable_tables, monkeypatch, settings, tmp_path):
    """Branding plus two test models (with a foreign key, m2m, file and secret) registered."""
    monkeypatch.setattr(promotion, "_registry", dict(promotion._registry))
    test_models.register(promotion)
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return test_models
