from django import forms

from notifications.models import Category, Channel, NotificationProfile
from notifications.services import consent_text

EDITABLE = [c for c in Category if c != Category.ACCOUNT]


def field_name(category: str, channel: str) -> str:
    return f"{category}__{channel}"


class PreferencesForm(forms.Form):
    """Per category and channel, digest frequency, quiet hours (institution time)."""

    digest_frequency = forms.ChoiceField(
        choices=NotificationProfile.Frequency.choices, label="Monthly updates"
    )
    quiet_start = forms.TimeField(
        required=False, label="Quiet from", widget=forms.TimeInput(attrs={"type": "time"})
    )
    quiet_end = forms.TimeField(
        required=False, label="until", widget=forms.TimeInput(attrs={"type": "time"})
    )

    def __init__(self, *args, current: dict, **kwargs):
        super().__init__(*args, **kwargs)
        for category in EDITABLE:
            for channel in Channel:
                self.fields[field_name(category, channel)] = forms.BooleanField(
                    required=False,
                    initial=current.get((category.value, channel.value), True),
                    label=consent_text(category, channel, True),
                )

    def clean(self):
        data = super().clean()
        if bool(data.get("quiet_start")) != bool(data.get("quiet_end")):
            raise forms.ValidationError("Give both ends of the quiet hours, or neither.")
        if data.get("quiet_start") and data["quiet_start"] == data.get("quiet_end"):
            raise forms.ValidationError("Quiet hours must start and end at different times.")
        return data

    def choices(self) -> dict[tuple[str, str], bool]:
        return {
            (category.value, channel.value): self.cleaned_data[field_name(category, channel)]
            for category in EDITABLE
            for channel in Channel
        }


class PushSubscriptionForm(forms.Form):
    endpoint = forms.URLField(max_length=1000, assume_scheme="https")
    p256dh = forms.CharField(max_length=120)
    auth = forms.CharField(max_length=40)
