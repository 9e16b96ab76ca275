from django import forms


class MagicLinkRequestForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class OptInForm(forms.Form):
    # Each field says what it is for (WCAG 1.3.5): a phone offers the member's own details.
    full_name = forms.CharField(
        label="Your full name",
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    street = forms.CharField(
        label="Street address of your home",
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "address-line1"}),
    )
    # ZIP or ZIP+4 (with a hyphen, which a numeric keypad may not have).
    postal_code = forms.CharField(
        label="ZIP code",
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "postal-code"}),
    )
