"""The member dashboard with ten flags or with none, for the flag overhead benchmark.

The benchmark serves the real dashboard (view, middleware, queries) from two gunicorn
servers whose only difference is this loader's variant (CHIMNEY_BENCH_DASHBOARD_FLAGS):

- "10": templates/homes/dashboard.html as it is, plus flag blocks until ten flags are
  evaluated per page;
- "0": the same markup with every `{% flag %}` replaced by a constant `{% if %}` giving the
  branch the benchmark member gets, so both pages render the same HTML and only the flag
  evaluation differs.
"""

from __future__ import annotations

import json
import os
import re

from django.template import Origin, TemplateDoesNotExist
from django.template.loaders.base import Loader as BaseLoader
from django.template.utils import get_app_template_dirs

from bench.harness import ROOT

TEMPLATE = "homes/dashboard.html"
VARIANT = "CHIMNEY_BENCH_DASHBOARD_FLAGS"
ANSWERS = "CHIMNEY_BENCH_FLAG_ANSWERS"  # JSON {flag name: the member's answer}
FLAG_TAG = re.compile(r"""{%\s*flag\s+["']([a-z0-9_]+)["']\s*%}""")
ENDFLAG_TAG = re.compile(r"{%\s*endflag\s*%}")


def flags_in(source: str) -> list[str]:
    return FLAG_TAG.findall(source)


def extra_block(name: str, i: int, answer: bool | None) -> str:
    """One more flagged fragment (answer None: a real {% flag %}; else its constant)."""
    body = (
        f'<p class="bench-flag" data-flag="{name}">New work {i} for '
        "{{ member.first_name|default:'you' }}</p>"
        "{% else %}"
        f'<p class="bench-flag off" data-flag="{name}">Current work {i}</p>'
    )
    if answer is None:
        return f'{{% flag "{name}" %}}{body}{{% endflag %}}'
    return f"{{% if {answer} %}}{body}{{% endif %}}"


def variant(source: str, flags: int, names: list[str], answers: dict[str, bool]) -> str:
    """The dashboard source with `flags` flags evaluated (0: none, same markup)."""
    present = flags_in(source)
    extra = [n for n in names if n not in present][: max(0, 10 - len(present))]
    if flags:
        blocks = "".join(extra_block(n, i, None) for i, n in enumerate(extra))
    else:
        source = FLAG_TAG.sub(lambda m: f"{{% if {answers[m.group(1)]} %}}", source)
        source = ENDFLAG_TAG.sub("{% endif %}", source)
        blocks = "".join(extra_block(n, i, answers[n]) for i, n in enumerate(extra))
    head, sep, tail = source.rpartition("{% endblock %}")
    if not sep:
        raise ValueError(f"{TEMPLATE} has no content block to extend")
    return f'{head}<section class="card bench-flags">{blocks}</section>{sep}{tail}'


class Loader(BaseLoader):
    """Serves only homes/dashboard.html, rewritten to the configured variant."""

    def get_template_sources(self, template_name):
        if template_name != TEMPLATE:
            return
        dirs = [ROOT / "templates", *get_app_template_dirs("templates")]
        for directory in dirs:
            path = os.path.join(directory, template_name)
            if os.path.exists(path):
                yield Origin(name=path, template_name=template_name, loader=self)
                return

    def get_contents(self, origin):
        try:
            with open(origin.name, encoding="utf-8") as f:
                source = f.read()
        except FileNotFoundError as exc:
            raise TemplateDoesNotExist(origin) from exc
        answers = json.loads(os.environ[ANSWERS])
        flags = int(os.environ[VARIANT])
        return variant(source, flags, list(answers), answers)
