"""Request templates and a mutation plan: bounded, reproducible attacks on each request part.

In the spirit of a fuzzing data plan: each part of a request (method, host, path, query,
headers, cookies, body) has an attack set, a probability and a maximum number of attacks,
and the request as a whole has a maximum. A seeded random generator makes a run
reproducible: the same plan and seed send the same requests.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

PARTS = ("method", "host", "path", "query", "headers", "cookies", "body")


@dataclass
class PlannedRequest:
    method: str
    host: str | None  # None: the environment's own host
    path: str
    query: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    cookies: dict = field(default_factory=dict)
    body: str | None = None
    attacks: list[str] = field(default_factory=list)

    @property
    def target(self) -> str:
        path = quote(self.path, safe="/%:@!$&'()*+,;=-._~")
        return path + ("?" + urlencode(self.query) if self.query else "")


def _header_safe(value: str) -> str:
    """Header values cannot hold CR, LF or NUL, and travel as latin-1: escape the rest."""
    text = str(value)
    for bad in ("\r", "\n", "\x00"):
        text = text.replace(bad, f"%{ord(bad):02X}")
    return text.encode("latin-1", "backslashreplace").decode("latin-1")


def from_template(template: dict, substitutions: dict[str, str]) -> PlannedRequest:
    def sub(value):
        if isinstance(value, str):
            for key, replacement in substitutions.items():
                value = value.replace("{" + key + "}", replacement)
        return value

    body = template.get("body")
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
    return PlannedRequest(
        method=str(template.get("method", "GET")).upper(),
        host=None,
        path=sub(template.get("path", "/")),
        query={k: sub(v) for k, v in (template.get("query") or {}).items()},
        headers={k: sub(v) for k, v in (template.get("headers") or {}).items()},
        cookies=dict(template.get("cookies") or {}),
        body=body,
    )


def mutate(request: PlannedRequest, mutation: dict, attack_sets: dict, rng: random.Random):
    """Apply at most mutation["max_attacks"] attacks to the request, part by part."""
    budget = int(mutation.get("max_attacks", 0))
    parts = mutation.get("parts") or {}
    for part in PARTS:
        spec = parts.get(part) or {}
        values = attack_sets.get(spec.get("attack_set", ""), [])
        limit = min(int(spec.get("max_attacks", 0)), budget)
        if budget <= 0:
            break
        if part == "headers" and rng.random() < float(spec.get("key_probability", 0)):
            keys = attack_sets.get(spec.get("key_attack_set", ""), [])
            if keys and values and limit > 0:  # an added header counts as the part's attack
                key = rng.choice(keys)
                request.headers[key] = _header_safe(rng.choice(values))
                request.attacks.append(f"headers[{key}] added")
                budget -= 1
                limit -= 1
        if not values or limit <= 0 or rng.random() >= float(spec.get("probability", 0)):
            continue
        for _ in range(rng.randint(1, limit)):
            if budget <= 0:
                break
            value = rng.choice(values)
            _attack(request, part, value, rng)
            budget -= 1


def _attack(request: PlannedRequest, part: str, value, rng: random.Random) -> None:
    text = str(value)
    if part == "method":
        request.method = text
    elif part == "host":
        request.host = text
    elif part == "path":
        request.path = (
            text
            if rng.random() < 0.5 and text.startswith("/")
            else (request.path.rstrip("/") + "/" + text.lstrip("/"))
        )
    elif part == "query":
        key = rng.choice([*request.query, "q"])
        request.query[key] = text
    elif part == "headers":
        key = rng.choice([*request.headers, "X-Chimney-Probe"])
        request.headers[key] = _header_safe(text)
    elif part == "cookies":
        key = rng.choice([*request.cookies, "probe"])
        request.cookies[key] = _header_safe(text).replace(";", "%3B")
    elif part == "body":
        request.body = text
    request.attacks.append(f"{part}={text[:40]!r}")


def plan_requests(
    *, templates: list, mutation: dict, attack_sets: dict, count: int, seed: int, substitutions
) -> list[PlannedRequest]:
    """`count` requests cycling through the templates, each possibly mutated (seeded)."""
    if not templates:
        return []
    rng = random.Random(seed)  # noqa: S311  (reproducible test traffic, not secrets)
    planned = []
    for i in range(count):
        request = from_template(templates[i % len(templates)], substitutions)
        mutate(request, mutation or {}, attack_sets or {}, rng)
        planned.append(request)
    return planned
