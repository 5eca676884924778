"""Exceptions for the sidecar's error answers.

The sidecar answers its own errors as ``{"error": {"type", "message",
"trace_id"?}}``; the model gateway answers in the provider's shape, OpenAI's
``{"error": {"message", "type", "param", "code"}}`` or Anthropic's
``{"type": "error", "error": {"type", "message"}}``. All of them become a
:class:`SidecarError` of the class that matches the status.
"""

import email.utils
import json
import time
from typing import Any, Dict, Mapping, Optional, Type

# How much of an error body is kept and parsed: error answers are small, and
# an upstream's own failure passed back may not be.
MAX_ERROR_BODY = 64 * 1024


class SidecarError(Exception):
    """An answer that is not a success, or no answer at all.

    ``status`` is the HTTP status (0 when no answer came), ``type`` the error
    type (``unavailable``, ``invalid_request``, ``rate_limit_error``, …),
    ``message`` what went wrong, ``code`` the provider's error code when there
    is one (``models_unavailable``, ``budget_exceeded``), ``trace_id`` the
    request's trace id when the sidecar gave one, ``headers`` the answer's
    headers and ``body`` (at most 64 KiB of) its body.
    """

    def __init__(self, status: int, type: str, message: str, *, code: Optional[str] = None,
                 trace_id: Optional[str] = None, headers: Optional[Mapping[str, str]] = None,
                 body: bytes = b"") -> None:
        self.status = status
        self.type = type
        self.message = message
        self.code = code
        self.trace_id = trace_id
        self.headers: Dict[str, str] = dict(headers or {})
        self.body = body
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"sidecar: {self.status}" if self.status else "sidecar"
        if self.type:
            head += f" {self.type}"
        text = f"{head}: {self.message}"
        if self.trace_id:
            text += f" (trace {self.trace_id})"
        return text

    @property
    def upstream(self) -> Optional[str]:
        """The upstream whose answer this is (X-Sidecar-Upstream), if any."""
        return _header(self.headers, "X-Sidecar-Upstream")


class BadRequestError(SidecarError):
    """400 and the like: the request itself is wrong (also 405, 415, 421, 422)."""


class NotFoundError(SidecarError):
    """404: an unknown path, breaker or model."""


class UnauthorizedError(SidecarError):
    """401 or 403: a missing or wrong token (SIDECAR_TOKEN), or a refused request."""


class TooLargeError(SidecarError):
    """413: the body is over the sidecar's limit."""


class RetryableError(SidecarError):
    """An error that may go away: ``retry_after`` is the seconds the answer
    said to wait (Retry-After or retry-after-ms), or None."""

    @property
    def retry_after(self) -> Optional[float]:
        return parse_retry_after(self.headers)


class RateLimitedError(RetryableError):
    """429: a rate limit or a spent budget."""


class UpstreamError(RetryableError):
    """502: the upstream broke the connection or answered garbage."""


class UnavailableError(RetryableError):
    """503 (or 529): nothing could take the call; ``retry_after`` says when a
    breaker lets a probe through."""


class UpstreamTimeoutError(RetryableError):
    """504: the upstream did not answer in time; also a call this client gave
    up waiting for (status 0)."""


class SidecarUnreachableError(SidecarError, ConnectionError):
    """The sidecar could not be reached (status 0): not running, or restarting."""


_BY_STATUS: Dict[int, Type[SidecarError]] = {
    400: BadRequestError, 405: BadRequestError, 415: BadRequestError, 421: BadRequestError,
    422: BadRequestError,
    401: UnauthorizedError, 403: UnauthorizedError,
    404: NotFoundError,
    413: TooLargeError,
    429: RateLimitedError,
    502: UpstreamError,
    503: UnavailableError, 529: UnavailableError,
    504: UpstreamTimeoutError,
}


def error_class(status: int) -> Type[SidecarError]:
    """The exception class for an answer of this status."""
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    if 500 <= status < 600:
        return RetryableError
    return SidecarError


def error_from_answer(status: int, headers: Mapping[str, str], body: bytes,
                      reason: str = "") -> SidecarError:
    """Builds the exception for a non-success answer, reading the error JSON
    in any of the three shapes; another body is quoted in the message."""
    body = body[:MAX_ERROR_BODY]
    etype, message, code, trace_id = "", "", None, None
    try:
        doc: Any = json.loads(body) if body else None
    except ValueError:
        doc = None
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        etype = _str(err.get("type"))
        message = _str(err.get("message"))
        code = _str(err.get("code")) or None
        trace_id = _str(err.get("trace_id")) or None
    elif isinstance(err, str):  # {"error": "text"}, as simple services answer
        message = err
    if not message:
        text = body.decode("utf-8", "replace").strip()
        message = repr(text[:200]) if text else (reason or "no error message")
    return error_class(status)(status, etype, message, code=code, trace_id=trace_id,
                               headers=headers, body=body)


def parse_retry_after(headers: Mapping[str, str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from retry-after-ms, else Retry-After (seconds or an
    HTTP date); None when neither says (garbage and past dates included)."""
    ms = _header(headers, "retry-after-ms")
    if ms:
        try:
            v = float(ms) / 1000
            if v >= 0:
                return v
        except ValueError:
            pass
    ra = _header(headers, "Retry-After")
    if not ra:
        return None
    ra = ra.strip()
    if ra.isdigit():
        return float(ra)
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    left = when.timestamp() - (time.time() if now is None else now)
    return left if left > 0 else None


def _header(headers: Mapping[str, str], name: str) -> Optional[str]:
    lname = name.lower()
    for k, v in headers.items():
        if k.lower() == lname:
            return v
    return None


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""
