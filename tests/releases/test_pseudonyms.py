"""Pseudonyms and the field rules of the anonymized copy, on their own."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import models

from homes.models.money import money_field
from institutions.fields import EncryptedTextField
from releases.staging_data.anonymize import COPIED
from releases.staging_data.copying import Rule, classify, plan
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
    made_up = p.street("NE 45th St")  # no house number: a made-up address instead
    assert made_up != "NE 45th St"
    assert street_key(made_up) is not None
    ordinal = p.street("15020 NE 45th St")
    assert ordinal.endswith(" NE 45th St")
    assert not ordinal.startswith("15020")
    box = p.street("PO Box 4471")
    assert box.startswith("PO Box ")
    assert box != "PO Box 4471"
    taken = {street_key(p.street("88 Alder St"))}
    avoiding = Pseudonyms("key", avoid_streets=frozenset(taken))
    assert street_key(avoiding.street("88 Alder St")) not in taken


@pytest.mark.parametrize(
    ("street", "hidden"),
    [
        ("N7420 County Road K", ["7420"]),  # a rural grid address
        ("W204N11509 Goldendale Rd", ["204", "11509"]),  # both grid coordinates
        ("Apt 4, 1204 Pine St", ["1204"]),  # the unit written before the house
        ("1204 Pine St, Unit 3, Seattle, WA 98101", ["1204"]),
        ("County Road K", []),  # no house number at all
        ("One Microsoft Way, Redmond, WA 98052", []),
    ],
)
def test_street__any_way_of_writing_it__every_number_of_the_street_line_replaced(street, hidden):
    """Whatever way the street is written, the value changes and none of the house's numbers
    is left; the city, state and ZIP code after it stay as they were."""
    moved = Pseudonyms("key").street(street)
    assert moved != street
    assert street_key(moved) is not None
    line = moved.split(", Seattle")[0].split(", Redmond")[0]
    assert not [n for n in hidden if n in line], moved
    for tail in (", Seattle, WA 98101", ", Redmond, WA 98052"):
        assert moved.endswith(tail) == street.endswith(tail)


def test_street_key__one_address_however_written__one_key():
    """A unit, 'Street' for 'St', 'North' for 'N' and punctuation do not make another
    address; another house number does."""
    keys = {
        street_key(v)
        for v in (
            "12 Pine St Apt 4",
            "12 Pine Street",
            "12 PINE ST., Seattle, WA 98101",
            "12 Pine St #4",
            "Apt 4, 12 Pine St",
        )
    }
    assert len(keys) == 1
    assert None not in keys
    assert street_key("12 North Pine Street") == street_key("12 N Pine St")
    assert street_key("13 Pine St") != street_key("12 Pine St")
    assert street_key("12 Pine Ave") != street_key("12 Pine St")
    assert street_key("NE 45th St") is None


def test_street__a_real_address_spelled_otherwise__never_the_replacement():
    """The replacement is compared by house number and street name: 'Street' or a unit in
    the real address does not hide that it is one."""
    p = Pseudonyms("key")
    taken = p.street("57 Pine St")
    assert street_key(taken) != street_key("57 Pine St")
    for real in (f"{taken} Apt 4", taken.replace(" St", " Street")):
        avoiding = Pseudonyms("key", avoid_streets=frozenset({street_key(real)}))
        assert street_key(avoiding.street("57 Pine St")) != street_key(taken)


def test_names__a_new_real_name__changes_only_the_members_who_had_it():
    """A name that becomes real (a new production member's) leaves every other member's
    replacement as it was; those who had it get another, never a real one."""
    values = [f"person {i}" for i in range(300)]
    before = Pseudonyms("key")
    after = Pseudonyms("key", avoid_names=frozenset({"priya", "okonkwo"}))
    for value in values:
        first, last = after.first_name(value), after.last_name(value)
        assert first == before.first_name(value) or before.first_name(value) == "Priya"
        assert last == before.last_name(value) or before.last_name(value) == "Okonkwo"
        assert first != "Priya"
        assert last != "Okonkwo"
    assert "Priya" in {before.first_name(v) for v in values}  # some did have it
    assert "Okonkwo" in {before.last_name(v) for v in values}


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


def test_copied_models__every_field_moved_like_money__is_an_amount_of_money():
    """A copied number with two decimals that is not money (a home's bathrooms, 2.50) has
    its own rule: only fields built as money amounts move like money."""
    money = money_field()
    moved = [
        f"{spec.label}.{f.name}"
        for spec in COPIED
        for f, rule in plan(spec)
        if rule is Rule.MONEY
        and (f.max_digits, f.decimal_places) != (money.max_digits, money.decimal_places)
    ]
    assert moved == []
