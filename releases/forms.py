from __future__ import annotations

from django import forms

from releases.models import ReleasePolicy, SignOff


class SignForm(forms.Form):
    role = forms.ChoiceField(choices=())
    decision = forms.ChoiceField(choices=SignOff.Decision.choices, widget=forms.RadioSelect)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def __init__(self, *args, roles=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(r, r) for r in roles]


class ScheduleForm(forms.Form):
    """The deploy time, read in the institution's time zone (the view activates it)."""

    at = forms.DateTimeField(
        label="Deploy at", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Only to deploy outside a window (admin role).",
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class DecideForm(forms.Form):
    keep = forms.TypedChoiceField(
        choices=[("1", "Keep the release"), ("0", "Roll it back")],
        coerce=lambda v: v == "1",
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


class ReleasePolicyForm(forms.ModelForm):
    required_roles = forms.MultipleChoiceField(
        choices=[
            ("it", "IT"),
            ("marketing", "Marketing"),
            ("lending", "Lending"),
            ("admin", "Admin"),
        ],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = ReleasePolicy
        fields = ["required_roles", "watch_minutes", "auto_rollback", "watch_rules"]


class MockDataForm(forms.Form):
    """A mock data set for staging: which region, how many members, which seed."""

    region = forms.ChoiceField(choices=())
    count = forms.IntegerField(label="Members", min_value=1, max_value=1_000_000, initial=1000)
    seed = forms.IntegerField(initial=1, help_text="The same seed gives the same data set.")
    history_months = forms.IntegerField(
        label="Months of value history", min_value=0, max_value=60, initial=12
    )

    def __init__(self, *args, regions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = list(regions)


class RefreshForm(forms.Form):
    """An anonymized copy of production: confirmed by typing the institution's slug."""

    confirm = forms.CharField(
        label="Type the institution's short name to confirm",
        help_text="Staging's members and homes are replaced; its configuration is kept.",
    )

    def __init__(self, *args, slug: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.slug = slug

    def clean_confirm(self):
        value = self.cleaned_data["confirm"].strip()
        if value != self.slug:
            raise forms.ValidationError(f'Type "{self.slug}" to confirm.')
        return value
