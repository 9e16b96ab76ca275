from django import forms

from flags.services.plans import ANALYTICS_CONSENT_ANSWERS


class AnalyticsConsentForm(forms.Form):
    answer = forms.ChoiceField(
        choices=[
            ("yes", ANALYTICS_CONSENT_ANSWERS[True]),
            ("no", ANALYTICS_CONSENT_ANSWERS[False]),
        ],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose yes or no."},
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    @property
    def granted(self) -> bool:
        return self.cleaned_data["answer"] == "yes"
