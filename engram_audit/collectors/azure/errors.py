"""Turning ARM failures into one readable line: what failed, on which resource, and why.

Reasons name the resource and, for 401/403, the exact RBAC action that was needed, so the
fix ("grant .../configurations/read on this server") can be read off the report. They never
contain a token: ARM's own message is included only after the token is scrubbed from it.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
    map_error,
)
from azure.core.rest import HttpResponse
from azure.mgmt.core.exceptions import ARMErrorFormat

from engram_audit.collectors.azure.pipeline import BudgetExhausted, RequestRefused, short_error

_ARM_MESSAGE_LIMIT = 300
_MIN_SECRET = 8
# Statuses the retry policy retries: only for these "after retries" is true.
_RETRIED = frozenset({408, 429, 500, 502, 503, 504})


class UnreadableAnswer(ValueError):
    """ARM or Resource Graph answered 200 with something other than what the API returns."""


# What the SDK's own operations raise for these statuses (the rest: HttpResponseError).
_ERROR_MAP = {401: ClientAuthenticationError, 404: ResourceNotFoundError}


def json_answer(response: HttpResponse, not_json: UnreadableAnswer) -> Any:
    """The JSON of a 200 answer read through ``send_request``; another status raises the error
    the SDK's operations raise for it, and a body that is not JSON raises ``not_json``."""
    if response.status_code != 200:
        map_error(response.status_code, response, _ERROR_MAP)
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)
    try:
        return response.json()
    except ValueError:
        raise not_json from None


class AzureCollectionError(Exception):
    """Azure collection cannot even start (bad endpoint, no credential); str() is one clean line."""


class AzureTargetError(AzureCollectionError):
    """The settings themselves are wrong (endpoint, cloud, CA bundle, token variable, limits):
    bad input rather than an environment that refused, so callers may treat it as a usage error."""


def describe_failure(
    error: BaseException, *, what: str, resource: str, permission: str, secret: str | None
) -> str:
    """One line: ``<what> of <resource>: <why>``, naming ``permission`` for 401/403."""
    subject = f"{what} of {resource}" if what else resource
    return _scrub(f"{subject}: {_why(error, permission)}", secret)


def _why(error: BaseException, permission: str) -> str:
    if isinstance(error, BudgetExhausted):
        return f"not read in time: {error}"
    if isinstance(error, RequestRefused):
        return f"not read: {error}"
    if isinstance(error, UnreadableAnswer):
        return f"unreadable answer: {error}"
    status = getattr(error, "status_code", None)
    code, message = _arm_error(error)
    detail = f" ({code}: {message})" if code or message else ""
    if status == 401 or (status is None and isinstance(error, ClientAuthenticationError)):
        return (
            f"401 Unauthorized: the credential was rejected (expired, wrong tenant or audience); "
            f"it needs {permission}{detail}"
        )
    if status == 403:
        return f"403 Forbidden: the identity lacks {permission}{detail}"
    if status == 404:
        return f"404 Not Found{detail}"
    if status == 429:
        return f"429 Too Many Requests: ARM kept throttling after retries{detail}"
    if isinstance(status, int):
        retried = " after retries" if status in _RETRIED else ""
        return f"ARM answered {status}{retried}{detail}"
    if isinstance(error, ServiceResponseError):
        return f"the connection to ARM dropped or timed out after retries ({short_error(error)})"
    if isinstance(error, ServiceRequestError):
        return f"could not reach ARM after retries ({short_error(error)})"
    if isinstance(error, AzureError):
        return f"Azure SDK error: {short_error(error)}"
    return f"unexpected {short_error(error)}"


def arm_error_code(error: BaseException) -> str | None:
    return _arm_error(error)[0]


def _arm_error(error: BaseException) -> tuple[str | None, str | None]:
    if not isinstance(error, HttpResponseError):
        return None, None
    code = error.error.code if error.error is not None else None
    message = error.error.message if error.error is not None else None
    if message:
        message = _first_line(message)[:_ARM_MESSAGE_LIMIT]
    return code, message


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0].strip() if text else type(value).__name__


def _scrub(text: str, secret: str | None) -> str:
    # Real bearer tokens are long JWTs; a very short "secret" would only mangle the message.
    return text.replace(secret, "***") if secret and len(secret) >= _MIN_SECRET else text
