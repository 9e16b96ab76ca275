"""Message templates rendered many times per batch, with Django's semantics but less work.

A campaign renders the same few templates for every member. Django's renderer resolves
each variable through a context stack with attribute, index and call fallbacks; message
contexts are plain dicts of JSON values, so the common nodes — text, `{{ a.b.c }}` and
`{% if a.b %}…{% elif … %}…{% else %}…{% endif %}` — are evaluated directly. Anything
else takes Django's own path: a variable not found in plain dicts or not a string, a filter,
a condition with operators; and a template with any other tag (a `{% with %}` or
`{% url … as x %}` could change what later nodes see) is rendered by Django entirely.
"""

from __future__ import annotations

from html import escape

from django.template import Context, Template, VariableDoesNotExist
from django.template.base import FilterExpression, TextNode, Variable, VariableNode
from django.template.base import render_value_in_context as _django_value
from django.template.defaulttags import IfNode, TemplateLiteral

_MISSING = object()


def _plain_lookups(expression: FilterExpression) -> tuple[str, ...] | None:
    """The lookups of a filterless variable such as `home.value`, else None."""
    var = expression.var
    if expression.filters or not isinstance(var, Variable) or var.lookups is None:
        return None
    if var.translate or var.message_context:
        return None
    return tuple(var.lookups)


def _lookup(data: dict, bits: tuple[str, ...]):
    """Follow dict keys only; _MISSING where Django would try anything else."""
    current = data
    for bit in bits:
        if type(current) is not dict or bit not in current:
            return _MISSING
        current = current[bit]
    return current


class _Renderer:
    """One render: the message's context as a dict, and a Django Context made when needed."""

    __slots__ = ("autoescape", "context", "data", "template")

    def __init__(self, template: Template, data: dict, autoescape: bool):
        self.template = template
        self.data = data
        self.autoescape = autoescape
        self.context = None

    def django(self) -> Context:
        if self.context is None:
            self.context = Context(self.data, autoescape=self.autoescape)
            # As Template.render binds it (nodes and error reports read both).
            self.context.template = self.template
            self.context.template_name = self.template.name
            self.context.render_context.template = self.template
        return self.context


def _compile(nodelist) -> list | None:
    """Operations for a node list, or None when one of its nodes is not understood."""
    ops = []
    for node in nodelist:
        if isinstance(node, TextNode):
            ops.append((0, node.s))
        elif isinstance(node, VariableNode):
            ops.append((1, _plain_lookups(node.filter_expression), node))
        elif isinstance(node, IfNode):
            branches = []
            for condition, body in node.conditions_nodelists:
                compiled = _compile(body)
                if compiled is None:
                    return None
                bits = None
                if isinstance(condition, TemplateLiteral):
                    bits = _plain_lookups(condition.value)
                branches.append((condition, bits, compiled))
            ops.append((2, branches))
        else:
            return None
    return ops


def _run(ops: list, r: _Renderer, out: list[str]) -> None:
    for op in ops:
        kind = op[0]
        if kind == 0:
            out.append(op[1])
        elif kind == 1:
            _, bits, node = op
            value = _lookup(r.data, bits) if bits is not None else _MISSING
            if type(value) is str:
                # What conditional_escape does to a plain str (django.utils.html.escape).
                out.append(escape(value) if r.autoescape else value)
            elif value is _MISSING:
                out.append(node.render_annotated(r.django()))
            else:
                out.append(_django_value(value, r.django()))
        else:
            for condition, bits, body in op[1]:
                if condition is None:  # {% else %}
                    match = True
                else:
                    match = _lookup(r.data, bits) if bits is not None else _MISSING
                    if match is _MISSING:
                        try:
                            match = condition.eval(r.django())
                        except VariableDoesNotExist:  # as IfNode.render
                            match = None
                if match:
                    _run(body, r, out)
                    break


class FastTemplate:
    """A compiled Django template with a faster render for plain-dict contexts."""

    def __init__(self, source: str):
        self.template = Template(source)
        self.ops = _compile(self.template.nodelist)

    def render(self, data: dict, *, autoescape: bool) -> str:
        if self.ops is None:
            return self.template.render(Context(data, autoescape=autoescape))
        out: list[str] = []
        _run(self.ops, _Renderer(self.template, data, autoescape), out)
        return "".join(out)
