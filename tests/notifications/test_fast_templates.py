"""Message templates rendered by the fast path are what Django renders, whatever they hold."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.utils.safestring import mark_safe
from hypothesis import given, settings
from hypothesis import strategies as st

from notifications.defaults import DEFAULT_TEMPLATES
from notifications.fast_templates import FastTemplate

TEMPLATES = [
    "plain text only",
    "Hello {{ member.first_name }} & {{ member.last_name }}",
    "{{ missing }}|{{ member.missing }}|{{ member.first_name.deeper }}",
    "{{ home.value }} {{ home.count }} {{ home.ratio }} {{ home.none }} {{ home.flag }}",
    "{{ home.items }} {{ home.items.0 }} {{ home.nested }} {{ home.nested.k }}",
    "{{ member.first_name|default:'there' }} {{ member.first_name|upper }}",
    "{{ safe }} {{ unsafe }}",
    "{{ True }} {{ None }} {{ 'literal' }} {{ 42 }}",
    "{% if home.flag %}yes{% elif home.value %}value{% else %}no{% endif %}",
    "{% if home.none %}a{% elif missing %}b{% endif %}end",
    "{% if home.count > 2 and member.first_name %}big{% endif %}",
    "{% if not home.flag %}off{% endif %}{% if home.value == '412000' %}eq{% endif %}",
    "{% if home.items %}{% if home.nested.k %}nested {{ home.nested.k }}{% endif %}{% endif %}",
    "{% with x=member.first_name %}{{ x }}{% endwith %} {{ member.first_name }}",
    "{% for i in home.items %}{{ i }},{% endfor %}",
    "{% firstof missing member.first_name as member %}{{ member }}",
    "{% autoescape off %}{{ unsafe }}{% endautoescape %} {{ unsafe }}",
    "{% comment %}hidden{% endcomment %}{# also hidden #}shown",
    *[
        source
        for template in DEFAULT_TEMPLATES.values()
        for key, source in template.items()
        if key not in ("name", "category")
    ],
]


def context(first_name="Zoë <&>", value="412000", flag=False, count=3):
    return {
        "member": {"first_name": first_name, "last_name": 'O\'Neil "Jr"', "email": "z@x.test"},
        "home": {
            "value": value,
            "value_display": "$412,000",
            "count": count,
            "ratio": 1.5,
            "none": None,
            "flag": flag,
            "items": ["a<b", 2],
            "nested": {"k": "v&w"},
            "change_display": "+1.2%",
            "equity_display": "",
            "top_offer_title": "HELOC",
            "top_offer_url": "https://x.test/o?a=1&b=2",
            "address": "1 <Main> St",
        },
        "links": {"dashboard": "https://x.test/", "offer": "https://x.test/o", "preferences": "p"},
        "institution": {"name": "Cascade & Co"},
        "appointment": {"when": "Thursday 10:30", "officer": "Sam", "title": "Call"},
        "market_rate": "5.875",
        "safe": mark_safe("<b>bold</b>"),
        "unsafe": "<script>",
    }


@pytest.mark.parametrize("source", TEMPLATES)
@pytest.mark.parametrize("autoescape", [True, False])
def test_fast_template__renders_as_django(source, autoescape):
    # A fresh context each: Django's Context writes `{% … as x %}` into the dict it was given.
    expected = Template(source).render(Context(context(), autoescape=autoescape))
    assert FastTemplate(source).render(context(), autoescape=autoescape) == expected


@settings(max_examples=60, deadline=None)
@given(
    first_name=st.one_of(st.text(max_size=12), st.none(), st.integers()),
    value=st.one_of(st.text(max_size=8), st.none(), st.booleans()),
    flag=st.one_of(st.booleans(), st.none(), st.text(max_size=2), st.integers(-1, 1)),
    count=st.one_of(st.integers(-5, 5), st.none(), st.text(max_size=2)),
)
def test_fast_template__any_values__renders_as_django(first_name, value, flag, count):
    def data():
        return context(first_name=first_name, value=value, flag=flag, count=count)

    for source in TEMPLATES:
        for autoescape in (True, False):
            expected = Template(source).render(Context(data(), autoescape=autoescape))
            assert FastTemplate(source).render(data(), autoescape=autoescape) == expected, source


def test_fast_template__known_nodes_take_the_fast_path__others_djangos():
    assert FastTemplate(DEFAULT_TEMPLATES["home_value"]["html_body"]).ops is not None
    assert FastTemplate("{% with x=1 %}{{ x }}{% endwith %}").ops is None
