from django import forms


class MagicLinkRequestForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)


class OptInForm(forms.Form):
    full_name = forms.CharField(label="Your full name", max_length=200)
    street = forms.CharField(label="Street address of your home", max_length=200)
    postal_code = forms.CharField(label="ZIP code", max_length=10)
