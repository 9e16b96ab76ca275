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
