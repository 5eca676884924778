"""The client: the sidecar's address and token, one-off requests to its
control API, calls through /call/ and chats through the model gateway."""

import email.message
import functools
import http.client
import json as jsonlib
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, ContextManager, Dict, List, Mapping, Optional, Tuple, Union

from . import trace
from .errors import (SidecarError, SidecarUnreachableError, UpstreamTimeoutError,
                     error_from_answer)
from .heartbeat import Heartbeats

#: The control API when SIDECAR_ADDR is not set.
DEFAULT_ADDR = "http://127.0.0.1:7070"

_UPSTREAM = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_MISSING: Any = object()


def control_url(addr: str) -> str:
    """The base URL of the control API at addr, read as the ``sidecar`` CLI
    reads -addr and SIDECAR_ADDR: host:port (plain HTTP), http://host[:port]
    or https://host[:port], optionally with a path prefix; no user
    information, query or fragment."""
    raw = addr.strip()
    bare = "://" not in raw
    if bare:
        raw = "http://" + raw
    problem = ""
    try:
        u: Optional[urllib.parse.SplitResult] = urllib.parse.urlsplit(raw)
    except ValueError:
        u, problem = None, "not an address"
    port = None
    if u is not None:
        try:
            port = u.port
        except ValueError:
            problem = "the port must be a number between 1 and 65535"
    if u is not None and not problem:
        if u.scheme not in ("http", "https") or not u.hostname:
            problem = "not an address"
        elif "@" in u.netloc:
            problem = "user information is not supported (set SIDECAR_TOKEN for the token)"
        elif u.query or u.fragment or raw.endswith("?") or "#" in raw:
            problem = "a query or fragment is not supported"
        elif bare and port is None:
            problem = "the port is missing"
        elif port is not None and not 1 <= port <= 65535:
            problem = "the port must be a number between 1 and 65535"
    if problem or u is None:
        shown = re.sub(r"^(\s*[A-Za-z]+://)?[^/@]*@", r"\1<redacted>@", addr)
        raise ValueError(f"bad sidecar address (SIDECAR_ADDR) {shown!r}: {problem}: use host:port or "
                         f'http(s)://host:port, e.g. "127.0.0.1:7070"')
    return (u.scheme + "://" + u.netloc + u.path).rstrip("/")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer to pass back, not to follow (a POST must not
    turn into a GET on its way somewhere else)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


class CallResult:
    """An answer through /call/ or the model gateway, and who gave it.

    ``status``, ``headers`` (case-insensitive ``get``), ``body`` (bytes);
    from the X-Sidecar-* headers: ``upstream`` and ``instance`` that
    answered, ``fallback`` (True when it was not the first choice),
    ``model`` and ``degraded`` for the model gateway, ``attempts`` (upstream
    calls made) and ``overhead_ms``.
    """

    def __init__(self, status: int, headers: email.message.Message, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def upstream(self) -> Optional[str]:
        return self.headers.get("X-Sidecar-Upstream")

    @property
    def instance(self) -> Optional[str]:
        return self.headers.get("X-Sidecar-Instance")

    @property
    def fallback(self) -> bool:
        return (self.headers.get("X-Sidecar-Fallback") or "").lower() == "true"

    @property
    def fallback_name(self) -> Optional[str]:
        """The upstream that answered when it was a fallback, else None."""
        return self.upstream if self.fallback else None

    @property
    def model(self) -> Optional[str]:
        return self.headers.get("X-Sidecar-Model")

    @property
    def degraded(self) -> bool:
        return (self.headers.get("X-Sidecar-Degraded") or "").lower() == "true"

    @property
    def attempts(self) -> Optional[int]:
        return _int(self.headers.get("X-Sidecar-Attempts"))

    @property
    def overhead_ms(self) -> Optional[int]:
        return _int(self.headers.get("X-Sidecar-Overhead-Ms"))

    def __repr__(self) -> str:
        who = self.model or self.upstream or "?"
        return f"<CallResult {self.status} from {who}{' (fallback)' if self.fallback or self.degraded else ''}>"


class ChatResult(CallResult):
    """A chat completion: ``text`` is the first choice's content, ``model``
    the model label that answered, ``degraded`` True when it was not the one
    asked for, ``usage`` the tokens the provider reported."""

    @functools.cached_property
    def _completion(self) -> Any:
        # The body parsed once, for text and usage.
        return self.json()

    @property
    def text(self) -> str:
        choices = self._completion.get("choices") or [{}]
        return (choices[0].get("message") or {}).get("content") or ""

    @property
    def usage(self) -> Dict[str, Any]:
        return dict(self._completion.get("usage") or {})


class Sidecar:
    """A client of one sidecar. Safe to share between threads and tasks.

    ``addr`` takes the forms of SIDECAR_ADDR (``127.0.0.1:7070``,
    ``http://127.0.0.1:7070``, ``https://host:port/prefix``); a non-empty
    ``token`` is sent as X-Sidecar-Token. ``timeout`` bounds control requests
    (heartbeats, status); calls and chats take their own.
    ``max_response_bytes`` bounds any answer read into memory.
    """

    def __init__(self, addr: str = DEFAULT_ADDR, token: Optional[str] = None, *,
                 timeout: float = 10.0, max_response_bytes: int = 64 << 20) -> None:
        self.addr = control_url(addr)
        self.token = token or None
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        # The sidecar is local: never through HTTP(S)_PROXY.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    @classmethod
    def from_env(cls, **kwargs: Any) -> "Sidecar":
        """The sidecar at $SIDECAR_ADDR (default http://127.0.0.1:7070) with
        the token $SIDECAR_TOKEN: what the sidecar sets for the agent it
        supervises, and what the ``sidecar`` CLI reads."""
        return cls(os.environ.get("SIDECAR_ADDR") or DEFAULT_ADDR,
                   os.environ.get("SIDECAR_TOKEN") or None, **kwargs)

    def __repr__(self) -> str:
        return f"Sidecar({self.addr!r}{', token=<redacted>' if self.token else ''})"

    # -- model gateway ----------------------------------------------------

    @property
    def openai_base_url(self) -> str:
        """The OpenAI-compatible gateway, for any OpenAI client (OPENAI_BASE_URL)."""
        return self.addr + "/llm/v1"

    @property
    def anthropic_base_url(self) -> str:
        """The Anthropic-compatible gateway (ANTHROPIC_BASE_URL): the SDK adds /v1."""
        return self.addr + "/llm"

    @property
    def sdk_api_key(self) -> str:
        """The API key to give an SDK: the sidecar's token (taken as a bearer
        token or x-api-key under /llm/), else a placeholder, since the sidecar
        adds the provider's key."""
        return self.token or "sidecar"

    def openai_client(self, **kwargs: Any) -> Any:
        """An ``openai.OpenAI`` client pointed at the gateway; keyword
        arguments go to its constructor. Pass ``extra_headers=
        sidecar.trace_headers()`` with each request to carry the trace."""
        try:
            import openai  # type: ignore[import-not-found]
        except ImportError as exc:
            raise ImportError("openai_client() needs the openai package: pip install openai "
                              "(or use sidecar.chat(), which needs nothing)") from exc
        kwargs.setdefault("base_url", self.openai_base_url)
        kwargs.setdefault("api_key", self.sdk_api_key)
        return openai.OpenAI(**kwargs)

    def anthropic_client(self, **kwargs: Any) -> Any:
        """An ``anthropic.Anthropic`` client pointed at the gateway; keyword
        arguments go to its constructor."""
        try:
            import anthropic  # type: ignore[import-not-found]
        except ImportError as exc:
            raise ImportError("anthropic_client() needs the anthropic package: pip install anthropic "
                              "(or use sidecar.chat(), which needs nothing)") from exc
        kwargs.setdefault("base_url", self.anthropic_base_url)
        kwargs.setdefault("api_key", self.sdk_api_key)
        return anthropic.Anthropic(**kwargs)

    def chat(self, model: str, messages: List[Dict[str, Any]], max_tokens: Optional[int] = None, *,
             timeout: float = 120.0, headers: Optional[Mapping[str, str]] = None,
             **fields: Any) -> ChatResult:
        """One chat completion through the gateway (POST /llm/v1/chat/completions),
        with the current trace headers. Further keyword arguments are fields of
        the request (``temperature=0``). Raises a SidecarError when no model
        could answer or the request is refused."""
        body: Dict[str, Any] = {"model": model, "messages": messages}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        body.update(fields)
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        trace.merge_into(hdrs)
        status, h, raw = self._send("POST", "/llm/v1/chat/completions",
                                    jsonlib.dumps(body).encode(), hdrs, timeout)
        if status >= 300:
            raise error_from_answer(status, _dict(h), raw)
        return ChatResult(status, h, raw)

    # -- calls ------------------------------------------------------------

    def call(self, upstream: str, path: str = "/", *, json: Any = _MISSING,
             data: Optional[bytes] = None, method: Optional[str] = None,
             headers: Optional[Mapping[str, str]] = None,
             params: Optional[Union[Mapping[str, Any], List[Tuple[str, Any]]]] = None,
             idempotency_key: Union[str, bool, None] = None, timeout: float = 60.0,
             raise_for_status: bool = True) -> CallResult:
        """Calls ``path`` of ``upstream`` through the sidecar's /call/.

        ``json`` (sent as JSON) or ``data`` (bytes, sent as is) is the body;
        ``method`` defaults to POST with a body, else GET. A POST carries an
        ``Idempotency-Key`` (a new uuid4 unless ``idempotency_key`` gives one;
        ``False``: none), which lets the sidecar retry it on another instance
        or a fallback. The current trace headers are added. An answer of 400
        or more raises the SidecarError of its status, with the answer in
        ``.headers`` and ``.body``, unless ``raise_for_status`` is False.
        """
        if not _UPSTREAM.match(upstream) or upstream in (".", ".."):
            raise ValueError(f"upstream {upstream!r}: use letters, digits, dots, dashes and underscores")
        if json is not _MISSING and data is not None:
            raise ValueError("give json or data, not both")
        hdrs: Dict[str, str] = {}
        body: Optional[bytes] = data
        if json is not _MISSING:
            body = jsonlib.dumps(json).encode()
            hdrs["Content-Type"] = "application/json"
        method = (method or ("POST" if body is not None else "GET")).upper()
        if method == "POST" and idempotency_key is not False:
            hdrs["Idempotency-Key"] = idempotency_key if isinstance(idempotency_key, str) else str(uuid.uuid4())
        elif isinstance(idempotency_key, str):
            hdrs["Idempotency-Key"] = idempotency_key
        for k, v in (headers or {}).items():
            for same in [hk for hk in hdrs if hk.lower() == k.lower()]:
                del hdrs[same]
            hdrs[k] = v
        trace.merge_into(hdrs)
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
            raise ValueError(f"path {path!r}: control characters are not allowed")
        # Spaces and non-ASCII are percent-encoded; what is already encoded
        # stays, and so does a query written in the path.
        path, sep, query = path.partition("?")
        target = "/call/" + upstream + "/" + urllib.parse.quote(path.lstrip("/"), safe="/%:@!$&'()*+,;=~")
        if params:
            query += ("&" if query else "") + urllib.parse.urlencode(params, doseq=True)
        if query or sep:
            target += "?" + urllib.parse.quote(query, safe="=&%:@!$'()*+,;/?~")
        status, h, raw = self._send(method, target, body, hdrs, timeout)
        if status >= 400 and raise_for_status:
            raise error_from_answer(status, _dict(h), raw)
        return CallResult(status, h, raw)

    # -- trace context ----------------------------------------------------

    @staticmethod
    def trace_context(incoming_headers: Any) -> ContextManager[Dict[str, str]]:
        """``with sidecar.trace_context(request.headers):`` — every call()
        and chat() inside carries the task's traceparent, tracestate and
        baggage (see agent_sidecar.trace.trace_context)."""
        return trace.trace_context(incoming_headers)

    @staticmethod
    def trace_headers() -> Dict[str, str]:
        """The trace headers in force, for an SDK request's extra_headers."""
        return trace.current_trace_headers()

    # -- control API ------------------------------------------------------

    def heartbeat(self, status: Optional[str] = None, note: Optional[str] = None,
                  metrics: Optional[Mapping[str, Any]] = None, progress: Any = None) -> Dict[str, Any]:
        """Sends one heartbeat; returns the sidecar's answer (``state``,
        ``next_due``, …). Fields left as None are not sent."""
        doc: Dict[str, Any] = {}
        if status is not None:
            doc["status"] = status
        if note is not None:
            doc["note"] = note
        if metrics is not None:
            doc["metrics"] = dict(metrics)
        if progress is not None:
            doc["progress"] = progress
        return self._control("POST", "/v1/heartbeat", doc)

    def heartbeats(self, interval: Optional[float] = None, *, status: str = "ok",
                   note: Optional[str] = None, metrics: Optional[Mapping[str, Any]] = None,
                   progress: Any = None, default_interval: float = 5.0) -> Heartbeats:
        """A heartbeat loop, started and stopped as a context manager:
        ``with sidecar.heartbeats() as hb:`` (a daemon thread) or
        ``async with sidecar.heartbeats() as hb:`` (an asyncio task).

        It sends at the interval the sidecar expects (read from each heartbeat
        answer); ``interval`` sends at least that often, and
        ``default_interval`` is used until the sidecar has answered.
        """
        return Heartbeats(self.heartbeat, interval=interval, status=status, note=note,
                          metrics=metrics, progress=progress, default_interval=default_interval)

    def status(self) -> Dict[str, Any]:
        """GET /v1/status."""
        return self._control("GET", "/v1/status", None)

    def health(self) -> Dict[str, Any]:
        """GET /v1/health: the sidecar's own liveness."""
        return self._control("GET", "/v1/health", None)

    def _control(self, method: str, path: str, doc: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        body = None if doc is None else jsonlib.dumps(doc).encode()
        hdrs = {} if body is None else {"Content-Type": "application/json"}
        status, h, raw = self._send(method, path, body, hdrs, self.timeout, limit=1 << 20)
        if status >= 300:
            raise error_from_answer(status, _dict(h), raw)
        try:
            answer = jsonlib.loads(raw)
        except ValueError:
            raise SidecarError(status, "invalid_answer", f"{path} answered something that is not JSON",
                               headers=_dict(h), body=raw[:1024]) from None
        return answer if isinstance(answer, dict) else {}

    def _send(self, method: str, path: str, body: Optional[bytes], headers: Dict[str, str],
              timeout: float, limit: Optional[int] = None) -> Tuple[int, email.message.Message, bytes]:
        limit = self.max_response_bytes if limit is None else limit
        hdrs = dict(headers)
        if self.token:
            hdrs["X-Sidecar-Token"] = self.token
        req = urllib.request.Request(self.addr + path, data=body, method=method, headers=hdrs)
        where = f"{method} {path.split('?')[0]}"
        try:
            try:
                resp = self._opener.open(req, timeout=timeout)
            except urllib.error.HTTPError as answer:  # a non-2xx answer, read like any other
                resp = answer
            with resp:
                raw = resp.read(limit + 1)
                status, h = resp.getcode(), resp.headers
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, socket.timeout):
                raise UpstreamTimeoutError(0, "timeout", f"{where}: no answer within {timeout:g}s") from None
            raise SidecarUnreachableError(0, "unreachable",
                                          f"{where}: the sidecar at {self.addr} is not reachable: {exc.reason}") from None
        except socket.timeout:
            raise UpstreamTimeoutError(0, "timeout", f"{where}: no answer within {timeout:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise SidecarUnreachableError(0, "unreachable",
                                          f"{where}: the connection to the sidecar failed: {exc!r}") from None
        if len(raw) > limit:
            raise SidecarError(status, "response_too_large",
                               f"{where}: the answer is over {limit} bytes (max_response_bytes)",
                               headers=_dict(h))
        return status, h, raw


def _dict(h: email.message.Message) -> Dict[str, str]:
    return {k: v for k, v in h.items()}


def _int(v: Optional[str]) -> Optional[int]:
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None
