"""A client of the agent sidecar: heartbeats, calls to other agents and
services through /call/, model requests through the gateway, typed errors
and trace context. Standard library only.

    from agent_sidecar import Sidecar

    sidecar = Sidecar.from_env()                    # SIDECAR_ADDR, SIDECAR_TOKEN
    with sidecar.heartbeats() as hb:                # a daemon thread
        hb.progress()                               # as work gets done
        answer = sidecar.call("researcher", "/task", json={"input": "a haiku"})
        reply = sidecar.chat("gpt-4o", [{"role": "user", "content": "a haiku"}])
"""

from .client import DEFAULT_ADDR, CallResult, ChatResult, Sidecar, control_url
from .errors import (BadRequestError, NotFoundError, RateLimitedError, RetryableError,
                     SidecarError, SidecarUnreachableError, TooLargeError, UnauthorizedError,
                     UnavailableError, UpstreamError, UpstreamTimeoutError, error_from_answer)
from .heartbeat import Heartbeats
from .trace import current_trace_headers, trace_context

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_ADDR", "Sidecar", "CallResult", "ChatResult", "Heartbeats", "control_url",
    "SidecarError", "BadRequestError", "NotFoundError", "UnauthorizedError", "TooLargeError",
    "RetryableError", "RateLimitedError", "UpstreamError", "UnavailableError",
    "UpstreamTimeoutError", "SidecarUnreachableError", "error_from_answer",
    "trace_context", "current_trace_headers",
]
