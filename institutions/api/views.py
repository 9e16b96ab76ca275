"""The base of every API view: key, scope, throttle, size limit, idempotent POSTs, errors."""

from __future__ import annotations

import hashlib
import json
import re

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from institutions.api import schema  # noqa: F401  (registers the key scheme)
from institutions.api.auth import ANY_KEY, ApiKeyAuthentication, ApiKeyThrottle, HasScope
from institutions.api.compiled import Unsure, compiled
from institutions.api.errors import (
    BatchRowsInvalid,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    RequestTooLarge,
    flatten,
)
from institutions.api.parsers import SafeJSONParser
from institutions.models import ApiKey
from institutions.services.idempotency import (
    IdempotencyError,
    idempotency_abandon,
    idempotency_begin,
    idempotency_complete,
)

IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
REPLAYED_HEADER = "Idempotent-Replayed"
#: Answers that ask the client to retry (a conflict with a concurrent request, a throttle)
#: are not the request's answer: like a server error, they are not stored for its key.
NOT_STORED = frozenset({409, 429})


class _Replay(Exception):
    def __init__(self, record):
        super().__init__("replay")
        self.record = record


def _request_hash(request) -> str:
    canonical = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256()
    for part in (request.method, request.get_full_path(), canonical):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


class ApiView(APIView):
    """An operation of the integration API on an environment's host.

    Subclasses say which scope each method needs (`required_scope`, or per method in
    `required_scopes`; ANY_KEY: any key of the environment). HEAD needs what GET needs;
    OPTIONS, which only describes the operation, any key. A method the view handles but
    names no scope for is refused. Every POST honours `Idempotency-Key`.
    """

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    throttle_classes = [ApiKeyThrottle]
    parser_classes = [SafeJSONParser]
    renderer_classes = [JSONRenderer]
    required_scope: str | None = None
    required_scopes: dict[str, str] = {}

    def scope_for(self, method: str) -> str | None:
        """The scope `method` needs (ANY_KEY: none); None when the view names none."""
        if method == "OPTIONS":
            return ANY_KEY
        method = "GET" if method == "HEAD" else method  # a GET without its body
        return self.required_scopes.get(method, self.required_scope)

    @property
    def environment(self):
        return self.request.auth.environment

    @property
    def actor_label(self) -> str:
        return self.request.user.label

    def initial(self, request, *args, **kwargs):
        self._idempotency = None
        length = request.META.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > settings.API_MAX_REQUEST_BYTES:
            raise RequestTooLarge(
                f"The request body is larger than {settings.API_MAX_REQUEST_BYTES:,} bytes."
            )
        super().initial(request, *args, **kwargs)
        if request.method == "POST":
            self._begin_idempotent(request)

    def _begin_idempotent(self, request) -> None:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return
        if not IDEMPOTENCY_KEY_RE.match(key):
            raise ValidationError(
                {"Idempotency-Key": ["1-255 printable ASCII characters, e.g. a UUID."]}
            )
        api_key: ApiKey = request.auth
        try:
            begun = idempotency_begin(
                environment=api_key.environment,
                api_key=api_key,
                key=key,
                request_hash=_request_hash(request),
                method=request.method,
                path=request.path,
            )
        except IdempotencyError as error:
            if error.kind == "mismatch":
                raise IdempotencyKeyReused() from error
            raise IdempotencyInProgress() from error
        if begun.replay:
            raise _Replay(begun.record)
        self._idempotency = begun.record

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            response = HttpResponse(
                exc.record.response_body,
                status=exc.record.status_code,
                content_type="application/json",
            )
            response[REPLAYED_HEADER] = "true"
            return response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record, self._idempotency = getattr(self, "_idempotency", None), None
        if record is not None:
            if response.status_code >= 500 or response.status_code in NOT_STORED:
                idempotency_abandon(record=record)  # "try again": a retry must do the work
            else:
                response.render()  # the bytes a retry will get, exactly
                body = response.content.decode()
                idempotency_complete(record=record, status_code=response.status_code, body=body)
        return response


class KeySerializer(serializers.Serializer):
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The part of the key that may be shown.")
    environment = serializers.ChoiceField(choices=["staging", "production"])
    institution = serializers.CharField(help_text="The institution's slug.")
    scopes = serializers.ListField(child=serializers.CharField())
    expires_at = serializers.DateTimeField(allow_null=True)


class KeyView(ApiView):
    """The key making the request: which environment it is for and what it may do."""

    required_scope = ANY_KEY

    @extend_schema(operation_id="key_retrieve", responses=KeySerializer, tags=["key"])
    def get(self, request):
        key: ApiKey = request.auth
        return Response(
            KeySerializer(
                {
                    "name": key.name,
                    "prefix": key.display_prefix,
                    "environment": key.environment.kind,
                    "institution": key.environment.institution.slug,
                    "scopes": sorted(key.granted_scopes()),
                    "expires_at": key.expires_at,
                }
            ).data
        )


def validate_batch(serializer_class, data, rows_key: str, check_rows=None) -> dict:
    """Validate a batch body; bad rows refuse it whole, each named by index with its fields.

    `check_rows(good, bad)`, when given, finds what is wrong between rows (a repeated id, a
    clash with stored rows) and returns RowErrors: on refusal it gets the rows good on their
    own (validated) and the bad ones (as sent), so that one answer names every bad row. (On
    success the service runs the same checks itself.)
    """
    fast = compiled(serializer_class)
    if fast is not None:
        try:
            return fast(data)
        except Unsure:
            pass  # the serializer decides, and names what is wrong
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return serializer.validated_data
    errors = dict(serializer.errors)
    row_errors = errors.get(rows_key)
    # Errors of rows come keyed by their index (LIST_SERIALIZER_ERRORS_AS_DICT).
    if isinstance(row_errors, dict) and row_errors and all(isinstance(i, int) for i in row_errors):
        del errors[rows_key]
        rows = {i: flatten(e) for i, e in row_errors.items()}
        if check_rows is not None:
            child = serializer.fields[rows_key].child
            good, bad = {}, {}
            for index, item in enumerate(data[rows_key]):
                if index not in rows:
                    good[index] = child.run_validation(item)
                elif isinstance(item, dict):
                    bad[index] = item
            for index, fields in check_rows(good, bad).as_dict().items():
                for name, messages in fields.items():
                    rows.setdefault(index, {}).setdefault(name, []).extend(messages)
        raise BatchRowsInvalid(
            [{"index": i, "fields": f} for i, f in rows.items()],
            total=len(data[rows_key]),
            fields=flatten(errors),
        )
    raise ValidationError(errors)
