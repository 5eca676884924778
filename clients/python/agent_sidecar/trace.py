"""W3C trace context (traceparent, tracestate, baggage) carried from the task
an agent is handling to the calls and model requests it makes for it."""

import contextlib
import contextvars
import re
from typing import Any, Dict, Iterator, Optional, Tuple

#: The headers forwarded, in the order they are sent.
TRACE_HEADERS = ("traceparent", "tracestate", "baggage")

# Bounds from the W3C specifications (tracestate: 32 members of at most 256
# characters; baggage: 8192 bytes); longer values are dropped, not cut.
_MAX_LEN = {"traceparent": 55, "tracestate": 32 * 257, "baggage": 8192}
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

_current: "contextvars.ContextVar[Tuple[Tuple[str, str], ...]]" = contextvars.ContextVar(
    "agent_sidecar_trace", default=())


def extract(headers: Any) -> Dict[str, str]:
    """The trace headers of an incoming request, by lower-case name.

    ``headers`` is a mapping (a dict, ``http.server``'s or ``email``'s
    message, a framework's headers) or a list of (name, value) pairs. A
    ``traceparent`` that is not valid W3C (or all zeros) is dropped, and with
    it ``tracestate``, which means nothing without it; values with control
    characters or over the specifications' lengths are dropped.
    """
    pairs = headers.items() if hasattr(headers, "items") else headers
    found: Dict[str, str] = {}
    for name, value in pairs or ():
        key = str(name).lower()
        if key in TRACE_HEADERS and key not in found and isinstance(value, str):
            value = value.strip()
            if value and len(value) <= _MAX_LEN[key] and value.isprintable():
                found[key] = value
    tp = found.get("traceparent")
    if tp is None or not valid_traceparent(tp):
        found.pop("traceparent", None)
        found.pop("tracestate", None)
    return found


def valid_traceparent(value: str) -> bool:
    """Whether value is a W3C traceparent with a non-zero trace and span id."""
    m = _TRACEPARENT.match(value)
    if m is None or m.group(1) == "ff":
        return False
    return m.group(2) != "0" * 32 and m.group(3) != "0" * 16


def trace_id(value: str) -> Optional[str]:
    """The trace id of a traceparent, or None when it is not valid."""
    return value.split("-")[1] if valid_traceparent(value) else None


@contextlib.contextmanager
def trace_context(incoming_headers: Any) -> Iterator[Dict[str, str]]:
    """Within the block, every call() and chat() (in this thread or asyncio
    task, and the tasks it starts) carries the trace headers of
    ``incoming_headers``; yields them. Blocks nest; the outer context comes
    back at the end of an inner one."""
    found = extract(incoming_headers)
    token = _current.set(tuple((k, found[k]) for k in TRACE_HEADERS if k in found))
    try:
        yield dict(found)
    finally:
        _current.reset(token)


def current_trace_headers() -> Dict[str, str]:
    """The trace headers of the trace_context() in force ({} outside one)."""
    return dict(_current.get())


def merge_into(headers: Dict[str, str]) -> None:
    """Adds the current trace headers to headers, unless they name their own."""
    have = {k.lower() for k in headers}
    for k, v in _current.get():
        if k not in have:
            headers[k] = v
