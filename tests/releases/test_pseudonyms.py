"""Pseudonyms and the field rules of the anonymized copy, on their own."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import models

from institutions.fields import EncryptedTextField
from releases.staging_data.copying import Rule, classify
from releases.staging_data.pseudonyms import FIRST_NAMES, Pseudonyms, perturb, street_key


def test_pseudonyms__keyed__same_input_same_output__another_key_another_output():
    one, again, other = Pseudonyms("key-1"), Pseudonyms("key-1"), Pseudonyms("key-2")
    email = "Ada.Lovelace@Example.com"
    assert one.email(email, "sink.invalid") == again.email(email.lower(), "sink.invalid")
    assert one.email(email, "sink.invalid") != other.email(email, "sink.invalid")
    assert one.email(email, "sink.invalid").endswith("@sink.invalid")
    assert one.external_id("CORE-1") == again.external_id("CORE-1") != one.external_id("CORE-2")
    assert one.first_name("Ada") == again.first_name("Ada")


def test_pseudonyms__names__never_a_real_name_being_replaced():
    real = frozenset(n.lower() for n in FIRST_NAMES[:-1])
    p = Pseudonyms("key", avoid_names=real)
    assert {p.first_name(f"person {i}") for i in range(50)} == {FIRST_NAMES[-1]}


def test_street__same_street_other_number_of_as_many_digits__never_a_real_address():
    p = Pseudonyms("key")
    moved = p.street("1204 Pine St, Seattle, WA 98101")
    number, rest = moved.split(" ", 1)
    assert rest == "Pine St, Seattle, WA 98101"
    assert len(number) == 4
    assert number != "1204"
    assert p.street("NE 45th St") == "NE 45th St"  # no house number: nothing to hide
    ordinal = p.street("15020 NE 45th St")
    assert ordinal.endswith(" NE 45th St")
    assert not ordinal.startswith("15020")
    box = p.street("PO Box 4471")
    assert box.startswith("PO Box ")
    assert box != "PO Box 4471"
    taken = {street_key(p.street("88 Alder St"))}
    avoiding = Pseudonyms("key", avoid_streets=frozenset(taken))
    assert street_key(avoiding.street("88 Alder St")) not in taken


def test_phone__a_number_reserved_for_fiction():
    assert "-555-01" in Pseudonyms("key").phone("+1 206 555 7788")


def test_perturb__in_shape__rounded_as_it_was__never_unchanged():
    p = Pseudonyms("key")
    for key in ("a", "b", "c", "d"):
        factor = p.factor(key, Decimal("0.05"))
        assert Decimal("0.95") <= factor <= Decimal("1.05")
        assert factor != 1
        estimate = perturb(Decimal(512000), factor)
        assert estimate % 1000 == 0
        assert estimate != 512000
        balance = perturb(Decimal("331254.17"), factor)
        assert balance != Decimal("331254.17")
        assert abs(balance / Decimal("331254.17") - factor) < Decimal("0.0001")
    assert perturb(Decimal(1000), Decimal("1.01")) == Decimal(1010)  # finer when $1,000 won't move
    assert perturb(Decimal(0), Decimal("1.03")) == 0


@pytest.mark.parametrize(
    ("field", "rule"),
    [
        (models.EmailField(name="email"), Rule.EMAIL),
        (models.CharField(name="work_email"), Rule.EMAIL),
        (models.CharField(name="mobile_phone"), Rule.PHONE),
        (models.CharField(name="first_name"), Rule.FIRST_NAME),
        (models.CharField(name="surname"), Rule.LAST_NAME),
        (models.CharField(name="street"), Rule.STREET),
        (models.CharField(name="mailing_address"), Rule.STREET),
        (models.CharField(name="external_id"), Rule.EXTERNAL_ID),
        (models.CharField(name="city"), Rule.KEEP),
        (models.CharField(name="kind", choices=[("a", "A")]), Rule.KEEP),
        (models.CharField(name="nickname"), Rule.BLANK),
        (models.TextField(name="notes"), Rule.BLANK),
        (models.JSONField(name="extra"), Rule.BLANK),
        (EncryptedTextField(name="token"), Rule.BLANK),
        (models.URLField(name="website"), Rule.BLANK),
        (models.DecimalField(name="balance", max_digits=14, decimal_places=2), Rule.MONEY),
        (models.DecimalField(name="rate", max_digits=6, decimal_places=3), Rule.KEEP),
        (models.FloatField(name="latitude"), Rule.LATITUDE),
        (models.FloatField(name="longitude"), Rule.LONGITUDE),
        (models.DateField(name="purchase_date"), Rule.DATE),
        (models.DateTimeField(name="viewed_at"), Rule.KEEP),
        (models.PositiveSmallIntegerField(name="grade"), Rule.KEEP),
        (models.UUIDField(name="token"), Rule.UUID),
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_classify__a_field_added_later__gets_a_rule_by_type_and_name(field, rule):
    assert classify(field) == rule
