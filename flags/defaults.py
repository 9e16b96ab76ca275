"""Shipped defaults: the engagement data plan, oracle rules, and the default test plan."""

from __future__ import annotations

from flags.oracle import DEFAULT_5XX_RULE, RuleSpec

_OFFER = {
    "type": "object",
    "properties": {
        "offer_id": {"type": ["integer", "string"]},
        "offer_kind": {
            "type": "string",
            "enum": ["heloc", "home_equity_loan", "cash_out_refi", "rate_term_refi", "pmi_removal"],
        },
    },
    "required": ["offer_id", "offer_kind"],
}


def demo_plan_points() -> dict:
    return {
        "dashboard_viewed": {
            "description": "A member opened the dashboard.",
            "schema": {"type": "object"},
        },
        "offer_viewed": {"description": "A member opened an offer.", "schema": _OFFER},
        "offer_saved": {"description": "A member saved an offer.", "schema": _OFFER},
        "offer_selected": {"description": "A member selected an offer.", "schema": _OFFER},
        "channel_preference_set": {
            "description": "A member chose how to be told (email or push) for a category.",
            "schema": {
                "type": "object",
                "properties": {
                    "channel": {"type": "string", "enum": ["email", "push"]},
                    "category": {"type": "string", "maxLength": 60},
                },
                "required": ["channel", "category"],
            },
        },
        "page_viewed": {
            "description": "A member page was shown (the beacon, with analytics consent).",
            "schema": {
                "type": "object",
                "properties": {"path": {"type": "string", "maxLength": 200}},
                "required": ["path"],
            },
        },
        "flag_impression": {
            "description": "A flag was evaluated for a member (first time per day and variant).",
            "schema": {
                "type": "object",
                "properties": {
                    "flag": {"type": "string"},
                    "variant": {"type": "string", "enum": ["on", "off"]},
                },
                "required": ["flag", "variant"],
            },
        },
    }


def default_rules() -> dict[str, list[RuleSpec]]:
    latency = RuleSpec("http_p95_latency_ms", "lower", 1000, 2500, 100, 0, "all", "p95 latency")
    return {
        "release": [DEFAULT_5XX_RULE, latency],
        "rollout": [DEFAULT_5XX_RULE],
        "test-plan:default": [
            RuleSpec("http_5xx_rate", "lower", 0.01, 0.05, 100, 0, "test", "5xx rate (test)"),
            RuleSpec(
                "http_p95_latency_ms", "lower", 1000, 2500, 100, 0, "test", "p95 latency (test)"
            ),
        ],
    }


ATTACK_SETS = {
    "methods": ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FOO"],
    "paths": ["/../../etc/passwd", "/%00", "/" + "a" * 2000, "/admin/", "/.env", "/%ff%fe"],
    "values": [
        "'",
        '"><script>alert(1)</script>',
        "' OR '1'='1",
        "-1",
        "99999999999999999999",
        "",
        "%00",
        "%s%s%s%n",
        "{{7*7}}",
        "ünïcødé",
        "A" * 5000,
    ],
    "keys": ["X-Forwarded-Host", "X-Original-URL", "Content-Length", "Transfer-Encoding"],
    "bodies": ["", "{", "[]", "null", '{"events": "nope"}', '{"events": [' + "{}," * 50 + "{}]}"],
    "hosts": ["evil.example", "localhost"],
}


def default_test_plan() -> dict:
    """Member pages and the API, mutated in the spirit of a fuzzing data plan."""
    return {
        "name": "default",
        "description": "Member pages, the event beacon and the API, with mutated requests.",
        "requests": [
            {"method": "GET", "path": "/"},
            {"method": "GET", "path": "/login/", "query": {"next": "/"}},
            {"method": "GET", "path": "/launch/", "query": {"token": "x"}},
            {
                "method": "POST",
                "path": "/events/beacon/",
                "headers": {"Content-Type": "application/json"},
                "body": {"events": [{"name": "dashboard_viewed", "properties": {}}]},
            },
            {"method": "GET", "path": "/api/v1/", "headers": {"Accept": "application/json"}},
        ],
        "mutation": {
            "max_attacks": 3,
            "parts": {
                "method": {"attack_set": "methods", "probability": 0.05, "max_attacks": 1},
                "host": {"attack_set": "hosts", "probability": 0.0, "max_attacks": 0},
                "path": {"attack_set": "paths", "probability": 0.10, "max_attacks": 2},
                "query": {"attack_set": "values", "probability": 0.50, "max_attacks": 2},
                "headers": {
                    "attack_set": "values",
                    "probability": 0.25,
                    "max_attacks": 2,
                    "key_attack_set": "keys",
                    "key_probability": 0.02,
                },
                "cookies": {"attack_set": "values", "probability": 0.25, "max_attacks": 1},
                "body": {"attack_set": "bodies", "probability": 0.25, "max_attacks": 1},
            },
        },
        "attack_sets": ATTACK_SETS,
        "max_requests": 150,
        "seed": 20200702,
        "rule_group": "test-plan:default",
    }
