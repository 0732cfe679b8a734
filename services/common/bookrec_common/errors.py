"""RFC 9457 Problem Details for every error a service can return.

Domain and store code raise `ProblemError` subclasses; framework errors
(validation, unknown route, wrong method) and dependency failures are mapped
here, in one place. A stack trace is logged only for 5xx and never sent.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import aiohttp
import botocore.exceptions
import redis.exceptions
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from bookrec_common.clients import redis_unavailable

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("bookrec.errors")


class ProblemError(Exception):
    status = 500
    code = "internal_error"
    title = "Internal server error"

    def __init__(self, detail: str, *, code: str | None = None, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


class BadRequest(ProblemError):
    status, code, title = 400, "bad_request", "Bad request"


class ValidationFailed(BadRequest):
    code, title = "validation_failed", "Request validation failed"


def field_error(field: str, message: str, source: str = "body") -> dict[str, str]:
    """One entry of a validation problem's `errors`: the field, what is wrong with it, and where it was
    (body, query, path, header, request)."""
    return {"field": field, "message": message, "source": source}


def invalid(field: str, message: str, source: str = "body", detail: str | None = None) -> ValidationFailed:
    """A 400 naming one bad field; its detail is `detail`, or "field: message"."""
    return ValidationFailed(detail or f"{field}: {message}", errors=[field_error(field, message, source)])


class Unauthorized(ProblemError):
    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(ProblemError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(ProblemError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(ProblemError):
    status, code, title = 409, "conflict", "Conflict"


class NotImplementedYet(ProblemError):
    status, code, title = 501, "not_implemented", "Not implemented"


class DependencyUnavailable(ProblemError):
    status, code, title = 503, "dependency_unavailable", "Service unavailable"


# Failures of a dependency (DynamoDB endpoint, a peer service) rather than of the request; Redis's are
# `redis_unavailable`'s (its consumers degrade; one that escapes is a 503 all the same, never a 500).
DEPENDENCY_ERRORS: tuple[type[BaseException], ...] = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.HTTPClientError,
    aiohttp.ClientError,
    TimeoutError,
)
_THROTTLING = {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
               "ServiceUnavailable", "InternalServerError", "ResourceNotFoundException"}


def problem_response(request: Request, status: int, code: str, title: str, detail: str,
                     errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
                     **extra: Any) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": f"urn:bookrec:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_AT_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"(?:missing required field|unknown field) `(?P<name>[^`]+)`")


def _field_name(key: str | None, message: str) -> str:
    """Name the offending field: msgspec puts its JSON path in the message of a body error."""
    at = _AT_PATH.search(message)
    named = _NAMED_FIELD.search(message)
    parts = [part for part in (at["path"] if at else "", named["name"] if named else "") if part]
    if parts:
        return ".".join(parts)
    return key if key and key != "data" else "body"


def _validation_errors(extra: Any) -> list[dict[str, Any]]:
    items = extra if isinstance(extra, list) else [extra] if extra else []
    errors = []
    for item in items:
        if isinstance(item, dict):
            message = str(item.get("message", "invalid"))
            errors.append(field_error(_field_name(item.get("key"), message), message,
                                      item.get("source") or "body"))
        else:
            errors.append(field_error("body", str(item)))
    return errors


def handle_problem(request: Request, exc: ProblemError) -> Response[dict[str, Any]]:
    if exc.status >= 500:
        log.warning("request failed: %s", exc.detail, extra={"code": exc.code, "status": exc.status})
    return problem_response(request, exc.status, exc.code, exc.title, exc.detail, exc.errors, exc.headers,
                            **exc.extra)


def handle_http_exception(request: Request, exc: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(exc, ValidationException):
        errors = _validation_errors(exc.extra)
        if not errors:  # e.g. "Missing required query parameter 'q' for path /search"
            named = re.search(r"(query|path|header|cookie) parameter '([^']+)'", exc.detail)
            errors = [field_error(named[2], exc.detail, named[1]) if named
                      else field_error("request", exc.detail, "request")]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or exc.detail
        return problem_response(request, 400, "validation_failed", "Request validation failed", detail,
                                errors)
    status = exc.status_code
    if status >= 500:
        log.error("http exception %s: %s", status, exc.detail)
        return problem_response(request, status, "internal_error", "Internal server error",
                                "The server could not complete the request.")
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
            415: "unsupported_media_type", 429: "too_many_requests"}.get(status, "bad_request")
    title = {404: "Not found", 405: "Method not allowed"}.get(status, exc.detail)
    detail = {404: f"No route for {request.method} {request.url.path}",
              405: f"Method {request.method} is not allowed on {request.url.path}"}.get(status, exc.detail)
    return problem_response(request, status, code, title, detail, headers=exc.headers)


def handle_unexpected(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    if (isinstance(exc, DEPENDENCY_ERRORS)
            or (isinstance(exc, redis.exceptions.RedisError) and redis_unavailable(exc))
            or (isinstance(exc, botocore.exceptions.ClientError)
                and exc.response.get("Error", {}).get("Code") in _THROTTLING)):
        log.warning("dependency unavailable: %s: %s", type(exc).__name__, exc)
        return problem_response(request, 503, "dependency_unavailable", "Service unavailable",
                                "A dependency of this service is unavailable; retry shortly.",
                                headers={"Retry-After": "1"})
    log.exception("unhandled error")
    return problem_response(request, HTTP_500_INTERNAL_SERVER_ERROR, "internal_error",
                            "Internal server error", "The server could not complete the request.")


EXCEPTION_HANDLERS = {
    ProblemError: handle_problem,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}


def decode_strictly(body: bytes, target: type[Any]) -> Any:
    """Re-decode a JSON body with no type coercion ("5" or 5.0 is not an integer; true is not a number).

    Litestar's own parsing coerces; handlers whose contract forbids that
    validate the raw body once more through here.
    """
    import msgspec

    try:
        return msgspec.json.decode(body, type=target, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        raise invalid(_field_name("body", message), message, detail=message) from None
    except msgspec.DecodeError as exc:
        raise invalid("body", str(exc), detail=f"invalid JSON: {exc}") from None
