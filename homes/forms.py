from django import forms


class MagicLinkRequestForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
