"""`{% load waffle_tags %}`: django-waffle's tags, with a `{% flag %}` that goes straight to
flags.evaluation instead of through `waffle.flag_is_active` and `Flag.get()`.

Same syntax and answers as waffle's tag (`{% flag "name" %}…{% else %}…{% endflag %}`, the
name quoted or a variable); a quoted name is read once, when the template is compiled.
Django lets the last installed app's library of a given name win, and flags comes after
waffle in INSTALLED_APPS (tests/flags/test_flags.py checks that this one is in use).
"""

from django import template
from waffle.templatetags.waffle_tags import WaffleNode
from waffle.templatetags.waffle_tags import register as waffle_register

from flags.evaluation import evaluate

register = template.Library()
register.tags.update(waffle_register.tags)
register.filters.update(waffle_register.filters)


class FlagNode(WaffleNode):
    def __init__(self, nodelist_true, nodelist_false, condition, name, compiled_name):
        super().__init__(nodelist_true, nodelist_false, condition, name, compiled_name)
        literal = compiled_name.var if not compiled_name.filters else None
        self.literal = literal if isinstance(literal, str) and literal else None

    def render(self, context):
        if self.literal is None:
            return super().render(context)
        if evaluate(context.get("request"), self.literal):
            return self.nodelist_true.render(context)
        return self.nodelist_false.render(context)


@register.tag
def flag(parser, token):
    return FlagNode.handle_token(parser, token, "flag", evaluate)
