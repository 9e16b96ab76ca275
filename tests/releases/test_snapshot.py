"""Snapshots and diffs, generic over the promotion registry."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.db import transaction

from institutions import promotion
from institutions.services import branding_update
from releases.apply import apply_snapshot
from releases.diff import diff_snapshots
from releases.snapshot import SnapshotError, capture, snapshot_hash


def make_gadget(models, environment, name, **fields):
    return models.Gadget.objects.create(environment=environment, name=name, **fields)


def seed(models, environment, *, price="10.00", secret="s3cret", manual=b"manual v1"):
    widget = make_gadget(models, environment, "Widget", price=Decimal(price), api_secret=secret)
    widget.manual.save("manual.txt", ContentFile(manual))
    sprocket = make_gadget(models, environment, "Sprocket", colour="blue")
    part = models.Part.objects.create(environment=environment, gadget=widget, code="A1")
    part.works_with.set([sprocket])
    return widget, sprocket, part


@pytest.mark.django_db
def test_capture__default_registry__holds_branding(tenant):
    snapshot = capture(tenant.staging)
    assert "institutions.Branding" in snapshot["models"]
    (row,) = snapshot["models"]["institutions.Branding"].values()
    assert row["display_name"] == tenant.institution.display_name
    assert "id" not in row
    assert "environment" not in row


@pytest.mark.django_db
def test_capture__same_config_different_ids__same_hash(tenant, promotables):
    # Production gets rows first, so every id differs from staging's.
    make_gadget(promotables, tenant.production, "Filler")
    promotables.Gadget.objects.filter(name="Filler").delete()
    seed(promotables, tenant.production)
    seed(promotables, tenant.staging)
    staging, production = capture(tenant.staging), capture(tenant.production)
    assert snapshot_hash(staging) == snapshot_hash(production)
    assert diff_snapshots(production, staging) == []


@pytest.mark.django_db
def test_capture__foreign_keys_and_m2m__are_natural_keys(tenant, promotables):
    seed(promotables, tenant.staging)
    parts = capture(tenant.staging)["models"]["releases.Part"]
    (key,) = parts
    assert json.loads(key) == ['["Widget"]', "A1"]
    assert parts[key]["gadget"] == '["Widget"]'
    assert parts[key]["works_with"] == ['["Sprocket"]']
    assert "hits" not in parts[key]
    assert set(parts[key]) == {"gadget", "code", "label", "works_with"}


@pytest.mark.django_db
def test_capture__secret__never_in_clear(tenant, promotables):
    seed(promotables, tenant.staging, secret="hunter2-very-secret")
    text = json.dumps(capture(tenant.staging))
    assert "hunter2-very-secret" not in text


@pytest.mark.django_db
def test_diff__added_changed_removed__field_by_field_in_words(tenant, promotables):
    seed(promotables, tenant.production)
    make_gadget(promotables, tenant.production, "Gizmo")
    seed(promotables, tenant.staging, price="12.50", secret="rotated", manual=b"manual v2")
    promotables.Gadget.objects.filter(environment=tenant.staging, name="Sprocket").update(
        colour="red", enabled=False
    )
    make_gadget(promotables, tenant.staging, "Doohickey")
    entries = diff_snapshots(capture(tenant.production), capture(tenant.staging))
    by_object = {(e["model"], e["object"], e["change"]): e for e in entries}
    assert ("Gadget", "Doohickey", "added") in by_object
    assert ("Gadget", "Gizmo", "removed") in by_object
    widget = by_object[("Gadget", "Widget", "changed")]
    fields = {f["field"]: f for f in widget["fields"]}
    assert set(fields) == {"price", "api_secret", "manual"}
    assert (fields["price"]["before"], fields["price"]["after"]) == ("10.00", "12.50")
    assert fields["api_secret"]["after"] == "(secret value)"
    assert fields["manual"]["label"] == "Manual"
    sprocket = {f["field"]: f for f in by_object[("Gadget", "Sprocket", "changed")]["fields"]}
    assert (sprocket["colour"]["before"], sprocket["colour"]["after"]) == ("Calm blue", "Warm red")
    assert (sprocket["enabled"]["before"], sprocket["enabled"]["after"]) == ("Yes", "No")


@pytest.mark.django_db
def test_diff__file_same_content_other_name__is_no_change(tenant, promotables):
    a = make_gadget(promotables, tenant.staging, "Widget")
    a.manual.save("one-name.txt", ContentFile(b"identical"))
    b = make_gadget(promotables, tenant.production, "Widget")
    b.manual.save("other-name.txt", ContentFile(b"identical"))
    assert diff_snapshots(capture(tenant.production), capture(tenant.staging)) == []


@pytest.mark.django_db
def test_diff__branding_colour__reads_as_a_sentence(tenant):
    branding_update(environment=tenant.staging, actor=None, primary_color="#00aa00")
    (entry,) = diff_snapshots(capture(tenant.production), capture(tenant.staging))
    assert entry["model"] == "Branding"
    assert entry["object"] == tenant.institution.display_name
    assert entry["fields"] == [
        {
            "field": "primary_color",
            "label": "Primary color",
            "before": "#1f4e79",
            "after": "#00aa00",
        }
    ]


@pytest.mark.django_db
def test_apply_snapshot__makes_target_equal_to_source(tenant, promotables):
    seed(promotables, tenant.production, price="1.00")
    make_gadget(promotables, tenant.production, "Gizmo")
    seed(promotables, tenant.staging, price="99.99", secret="new-secret", manual=b"v2")
    make_gadget(promotables, tenant.staging, "Doohickey", settings={"tiers": [1, 2]})
    branding_update(environment=tenant.staging, actor=None, accent_color="#123456")
    source = capture(tenant.staging)
    with transaction.atomic():
        changes = apply_snapshot(environment=tenant.production, snapshot=source)
    assert {c.change for c in changes} == {"added", "changed", "removed"}
    assert snapshot_hash(capture(tenant.production)) == snapshot_hash(source)
    widget = promotables.Gadget.objects.get(environment=tenant.production, name="Widget")
    assert widget.api_secret == "new-secret"
    assert widget.manual.read() == b"v2"
    part = promotables.Part.objects.get(environment=tenant.production)
    assert part.gadget == widget
    assert [g.environment_id for g in part.works_with.all()] == [tenant.production.pk]


@pytest.mark.django_db
def test_capture__relation_to_unpromoted_tenant_data__is_a_clear_error(
    tenant, promotables, monkeypatch
):
    monkeypatch.setattr(promotion, "_registry", {})
    promotion.register("releases.Part", natural_key=("environment", "gadget", "code"))
    with pytest.raises(SnapshotError, match="not promoted"):
        capture(tenant.staging)
