"""The OpenAPI description: the key scheme, the Idempotency-Key header, the error answers."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from institutions.api.auth import ANY_KEY

IDEMPOTENCY_HEADER = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    pattern=r"^[\x21-\x7e]{1,255}$",
    description=(
        "Makes a retry safe: the first request with a key is processed and its response is "
        "stored for 24 hours; a retry with the same key and body gets that response again "
        "(header `Idempotent-Replayed: true`) and changes nothing. An answer asking for a "
        "retry (409, 429, 5xx) is not stored: the retry is processed afresh. The same key "
        "with a different body is refused (422); while the first request runs, others with "
        "its key get 409. 1-255 printable ASCII characters, e.g. a UUID."
    ),
)


class RowErrorSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="0-based position of the row in the batch.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="What is wrong with the row, by field (dotted paths into nested objects).",
    )


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text=(
            "invalid, not_authenticated, permission_denied, not_found, method_not_allowed, "
            "not_acceptable, unsupported_media_type, request_too_large, "
            "idempotency_in_progress, idempotency_key_reused, conflict, throttled, server_error"
        )
    )
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Errors of the request's own fields (dotted paths), by field.",
    )
    rows = RowErrorSerializer(many=True, help_text="A batch's bad rows; nothing was saved.")


class ErrorSerializer(serializers.Serializer):
    """Every answer that is not a success has this body."""

    error = ErrorDetailSerializer()


_ERRORS = {
    "400": "Bad input: `fields` and `rows` name what is wrong; nothing was changed.",
    "401": "No API key, or one that is malformed, unknown here, expired or revoked.",
    "403": "The key lacks the scope this operation needs.",
    "404": "No such object in this environment.",
    "409": (
        "`idempotency_in_progress`: a request with this Idempotency-Key is still in progress; "
        "`conflict`: another request changed the same rows at the same moment. Nothing was "
        "changed; retry."
    ),
    "413": "The request body is larger than the limit.",
    "415": "Send JSON (`Content-Type: application/json`).",
    "422": "The Idempotency-Key was used with a different request.",
    "429": "Too many requests with this key; retry after `Retry-After` seconds.",
}


class ChimneyAutoSchema(AutoSchema):
    """Adds the error answers every operation can give and the Idempotency-Key of POSTs."""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        scope = getattr(self.view, "scope_for", lambda method: None)(self.method)
        if operation is not None and scope and scope != ANY_KEY:
            description = operation.get("description", "")
            operation["description"] = f"{description}\n\nNeeds the `{scope}` scope.".strip()
        return operation

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method == "POST":
            parameters.append(IDEMPOTENCY_HEADER)
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = ["400", "401", "403", "404", "429"]
        if self.method == "POST":
            codes += ["409", "413", "415", "422"]
        for code in codes:
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = _ERRORS[code]
                responses[code] = response
        return dict(sorted(responses.items()))


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "institutions.api.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "chk_<test|live>_<id>_<secret>",
            "description": (
                "An API key of the environment whose host you call: `chk_test_…` keys work "
                "on the staging host only, `chk_live_…` keys on the production host only."
            ),
        }


#: Integer bounds that come from the database's column types (they differ between SQLite
#: and PostgreSQL), not from the API: the committed schema must not depend on the database.
_DATABASE_LIMITS = {32767, 2147483647, 9223372036854775807}


def drop_database_ranges(result, generator, request, public):
    """POSTPROCESSING_HOOK: remove integer bounds that only echo a column type."""

    def clean(node):
        if isinstance(node, dict):
            if node.get("type") == "integer":
                if node.get("maximum") in _DATABASE_LIMITS:
                    del node["maximum"]
                    if node.get("format") == "int64":
                        del node["format"]
                if node.get("minimum") in {-limit - 1 for limit in _DATABASE_LIMITS}:
                    del node["minimum"]
            for value in node.values():
                clean(value)
        elif isinstance(node, list):
            for value in node:
                clean(value)

    clean(result.get("components", {}))
    return result
