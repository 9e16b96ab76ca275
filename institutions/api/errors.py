"""One error format for every API answer that is not a success.

    {"error": {"code": "invalid",
               "message": "2 of 1000 rows are invalid; nothing was saved.",
               "fields": {"members": ["..."]},
               "rows": [{"index": 3, "fields": {"email": ["Enter a valid email address."]}}]}}

`fields` names the request's own fields (dotted paths into nested objects), `rows` the bad
rows of a batch by their 0-based index. Both are always present, empty when not relevant.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from institutions.services.batch import RowsInvalid

log = logging.getLogger(__name__)


class BatchRowsInvalid(exceptions.ValidationError):
    """A batch refused whole: every bad row named by index, with its field errors."""

    default_code = "invalid"

    def __init__(self, rows: list[dict], *, total: int, message: str | None = None, fields=None):
        self.rows = sorted(rows, key=lambda r: r["index"])
        self.fields = fields or {}
        self.message = message or (
            f"{len(self.rows)} of {total} rows are invalid; nothing was saved."
        )
        super().__init__({"rows": self.rows})


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


class IdempotencyInProgress(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A request with this Idempotency-Key is still being processed; retry later."
    default_code = "idempotency_in_progress"


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = (
        "This Idempotency-Key was already used with a different request; use a new key."
    )
    default_code = "idempotency_key_reused"


def flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF error detail (nested dicts and lists) as {"dotted.path": [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors" and prefix:
                path = prefix  # an error of the object itself, e.g. "not a list"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for name, messages in flatten(value, path).items():
                out.setdefault(name, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            if detail:
                out.setdefault(prefix or "non_field_errors", []).extend(str(m) for m in detail)
        else:
            for index, item in enumerate(detail):
                if item in ({}, [], None):
                    continue
                path = f"{prefix}.{index}" if prefix else str(index)
                for name, messages in flatten(item, path).items():
                    out.setdefault(name, []).extend(messages)
    elif detail is not None:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def error_body(
    code: str, message: str, fields: dict | None = None, rows: list | None = None
) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}, "rows": rows or []}}


def _validation_message(fields: dict[str, list[str]]) -> str:
    general = fields.get("non_field_errors")
    if general and len(fields) == 1:
        return " ".join(general)
    names = ", ".join(sorted(fields)[:5])
    return f"Invalid input: {names}." if names else "Invalid input."


def api_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error in the one format; an unexpected one is a 500
    in the same format (and logged), never an HTML page."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, RowsInvalid):
        exc = BatchRowsInvalid(exc.rows, total=exc.total)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    if not isinstance(exc, exceptions.APIException):
        log.exception("API error", exc_info=exc)
        set_rollback()
        return Response(
            error_body("server_error", "Something went wrong on our side; it was logged."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait) or 1)
    if isinstance(exc, BatchRowsInvalid):
        body = error_body("invalid", exc.message, exc.fields, exc.rows)
    elif isinstance(exc, exceptions.ValidationError):
        fields = flatten(exc.detail)
        message = _validation_message(fields)
        body = error_body("invalid", message, fields)
    else:
        code = exc.default_code
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            code = "not_authenticated"
        message = str(exc.detail) if not isinstance(exc.detail, dict | list) else str(exc)
        body = error_body(code, message)
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


@csrf_exempt  # an API path, whatever the method: answered in the error format, never CSRF's page
def not_found(request, *args, **kwargs):
    """Any path under the API that names no operation."""
    return JsonResponse(
        error_body("not_found", "No such API operation."), status=status.HTTP_404_NOT_FOUND
    )


not_found.not_an_object_page = True


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Another request changed the same rows at the same moment; retry."
    default_code = "conflict"
