"""Models that exist only in the tests: variety the promotion registry and the anonymized
copy of production must handle.

Their tables are made by the `_promotable_tables` fixture; they are not TenantModels (so
the generic tenancy tests leave them alone) but carry an environment like tenant rows.
"""

from django.db import models

from institutions.fields import EncryptedTextField
from institutions.models import Environment


class Gadget(models.Model):
    class Colour(models.TextChoices):
        RED = "red", "Warm red"
        BLUE = "blue", "Calm blue"

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=60)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    enabled = models.BooleanField(default=True)
    colour = models.CharField(max_length=8, choices=Colour.choices, default=Colour.RED)
    settings = models.JSONField(default=dict, blank=True)
    api_secret = EncryptedTextField(blank=True)
    manual = models.FileField(upload_to="manuals/", blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "releases"
        db_table = "test_releases_gadget"
        constraints = [
            models.UniqueConstraint(fields=["environment", "name"], name="test_gadget_name")
        ]

    def __str__(self) -> str:
        return self.name


class Part(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    gadget = models.ForeignKey(Gadget, on_delete=models.CASCADE, related_name="parts")
    code = models.CharField(max_length=20)
    label = models.CharField(max_length=60, blank=True)
    hits = models.PositiveIntegerField(default=0)  # runtime state: excluded from promotion
    works_with = models.ManyToManyField(Gadget, blank=True, related_name="+")

    class Meta:
        app_label = "releases"
        db_table = "test_releases_part"
        constraints = [
            models.UniqueConstraint(fields=["environment", "gadget", "code"], name="test_part_code")
        ]

    def __str__(self) -> str:
        return f"{self.gadget}/{self.code}"


class Contact(models.Model):
    """Member-level data of a kind the anonymized copy has no explicit rule for: a model
    added later, whose fields it must handle by their type and name."""

    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="+")
    external_id = models.CharField(max_length=40, blank=True)
    first_name = models.CharField(max_length=60, blank=True)
    last_name = models.CharField(max_length=60, blank=True)
    mobile_phone = models.CharField(max_length=30, blank=True)
    email = models.EmailField(blank=True)
    mailing_address = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True)
    preferences = models.JSONField(default=dict, blank=True)
    balance = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    since = models.DateField(null=True, blank=True)
    kind = models.CharField(
        max_length=10, choices=[("owner", "Owner"), ("co", "Co-borrower")], default="owner"
    )

    class Meta:
        app_label = "releases"
        db_table = "test_releases_contact"

    def __str__(self) -> str:
        return f"Contact {self.pk}"


def create_tables(connection) -> None:
    with connection.schema_editor() as editor:
        for model in (Gadget, Part, Contact):
            editor.create_model(model)


def register(promotion) -> None:
    promotion.register("releases.Gadget", natural_key=("environment", "name"))
    promotion.register(
        "releases.Part", natural_key=("environment", "gadget", "code"), exclude=("hits",)
    )
