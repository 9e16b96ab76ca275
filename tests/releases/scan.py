"""A scan of everything an environment owns, for personal data that must not be there.

Generic on purpose: every model with a foreign key to Environment (tenant rows, audit
entries, domains, test models, whatever is added later) and every text, char or JSON
column of it is read, so a new model or field is covered without touching this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from django.apps import apps
from django.db import models

from institutions.models import Environment

TEXT = (models.CharField, models.TextField, models.JSONField)


@dataclass(frozen=True)
class Found:
    model: str
    pk: object
    field: str
    needle: str
    value: str


def owned_models() -> list[tuple[type[models.Model], list[models.Field], list[models.Field]]]:
    """(model, its foreign keys to Environment, its text columns) for every model that
    belongs to an environment and holds any text."""
    found = []
    for model in apps.get_models(include_auto_created=True):
        fields = model._meta.concrete_fields
        owners = [f for f in fields if f.is_relation and f.related_model is Environment]
        texts = [f for f in fields if isinstance(f, TEXT)]
        if owners and texts:
            found.append((model, owners, texts))
    return found


def owned_text(environment: Environment) -> Iterator[tuple[str, object, str, str]]:
    """(model label, pk, field, text) of every text value of every row the environment owns."""
    for model, owners, texts in owned_models():
        condition = models.Q()
        for owner in owners:
            condition |= models.Q(**{owner.attname: environment.pk})
        rows = model._base_manager.filter(condition).values_list("pk", *(f.attname for f in texts))
        for pk, *values in rows:
            for f, value in zip(texts, values, strict=True):
                if value not in (None, "", {}, []):
                    yield model._meta.label, pk, f.name, str(value).lower()


def _word(needle: str) -> re.Pattern:
    return re.compile(r"(?<![\w])" + re.escape(needle.lower()) + r"(?![\w])")


def scan(
    environment: Environment,
    *,
    needles: list[str],
    street_pairs: list[tuple[str, str]] = (),
) -> list[Found]:
    """Every place where a needle (a name, email, phone, street address...) appears as a
    whole word, or where one value holds both a house number and its street name."""
    patterns = [(n, _word(n)) for n in needles if n]
    pairs = [(f"{num} {street}", _word(num), street.lower()) for num, street in street_pairs]
    found = []
    for label, pk, field, text in owned_text(environment):
        for needle, pattern in patterns:
            if pattern.search(text):
                found.append(Found(label, pk, field, needle, text))
        for needle, number, street in pairs:
            if street in text and number.search(text):
                found.append(Found(label, pk, field, needle, text))
    return found
