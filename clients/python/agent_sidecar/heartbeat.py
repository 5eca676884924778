"""The heartbeat loop: a daemon thread (``with``) or an asyncio task
(``async with``) that tells the sidecar the agent is alive, with its status,
note, metrics and progress, and keeps going while the sidecar is away."""

import asyncio
import datetime
import logging
import re
import threading
import time
from typing import Any, Callable, Dict, Mapping, Optional

log = logging.getLogger("agent_sidecar")

STATUSES = ("ok", "degraded", "failing")

# The share of the sidecar's interval waited between beats, so a beat lands
# before it is due despite scheduling and network delays.
_EARLY = 0.9
# While beats fail, a warning at most this often (the first failure is
# always logged).
_WARN_EVERY = 30.0
# Bounds of the sidecar's heartbeat body (docs/control-api.md).
_MAX_NOTE = 1024
_MAX_METRICS = 64

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def parse_time(value: Any) -> Optional[datetime.datetime]:
    """A time as the sidecar writes it (RFC 3339, up to nanoseconds), or None."""
    m = _RFC3339.match(value) if isinstance(value, str) else None
    if m is None:
        return None
    frac = (m.group(2) or "")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return datetime.datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}")
    except ValueError:
        return None


def expected_interval(reply: Mapping[str, Any]) -> Optional[float]:
    """The sidecar's heartbeat interval as a heartbeat answer tells it: the
    time from last_heartbeat to next_due."""
    last, due = parse_time(reply.get("last_heartbeat")), parse_time(reply.get("next_due"))
    if last is None or due is None:
        return None
    seconds = (due - last).total_seconds()
    return seconds if seconds > 0 else None


class Heartbeats:
    """Sends heartbeats until stopped. Made by ``Sidecar.heartbeats()``;
    its methods are safe to call from any thread.

    ``progress()`` adds one to the progress counter, ``progress(n)`` sets
    it (a number or a string: whatever changes while work gets done);
    ``note()``, ``metrics()`` and ``status()`` set what the next beat says.
    ``sent``, ``failures`` (in a row) and ``last_reply`` tell how it goes.
    """

    def __init__(self, send: Callable[..., Dict[str, Any]], *, interval: Optional[float] = None,
                 status: str = "ok", note: Optional[str] = None,
                 metrics: Optional[Mapping[str, Any]] = None, progress: Any = None,
                 default_interval: float = 5.0) -> None:
        if interval is not None and interval <= 0:
            raise ValueError("interval must be positive")
        if default_interval <= 0:
            raise ValueError("default_interval must be positive")
        self._send = send
        self._interval = interval
        self._default = default_interval
        self._lock = threading.Lock()
        self._status = _check_status(status)
        self._note = note
        self._metrics: Dict[str, Any] = {}
        self._progress = progress
        self._expected: Optional[float] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._task: "Optional[asyncio.Task[None]]" = None
        self._failing_since: Optional[float] = None
        self._last_warning = 0.0
        self.sent = 0
        self.failures = 0
        self.last_reply: Optional[Dict[str, Any]] = None
        if metrics:
            self.metrics(metrics)

    # -- what the next beat says ------------------------------------------

    def progress(self, value: Any = None) -> Any:
        """Sets the progress to value, or adds one when value is None (from
        0); returns the new progress."""
        with self._lock:
            if value is None:
                current = self._progress if isinstance(self._progress, int) else 0
                self._progress = current + 1
            elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
                self._progress = value
            else:
                raise TypeError("progress is a number or a string")
            return self._progress

    def note(self, text: Optional[str]) -> None:
        """Sets the note (at most 1 KiB; longer is cut), shown in status and Consul."""
        if text is not None:
            text = text.encode("utf-8")[:_MAX_NOTE].decode("utf-8", "ignore")
        with self._lock:
            self._note = text

    def metrics(self, values: Optional[Mapping[str, Any]] = None, *, replace: bool = False,
                **more: Any) -> None:
        """Updates the metrics (numbers, strings or booleans), or replaces
        them all with ``replace=True``; at most 64 keys."""
        update = dict(values or {}, **more)
        for k, v in update.items():
            if not isinstance(k, str) or not isinstance(v, (int, float, str, bool)):
                raise TypeError(f"metric {k!r}: a metric is a number, a string or a boolean")
        with self._lock:
            merged = update if replace else {**self._metrics, **update}
            if len(merged) > _MAX_METRICS:
                raise ValueError(f"at most {_MAX_METRICS} metrics")
            self._metrics = merged

    def status(self, value: str) -> None:
        """Sets the status: "ok", "degraded" or "failing" (the Consul check
        becomes passing, warning or critical)."""
        checked = _check_status(value)
        with self._lock:
            self._status = checked

    # -- the loop ---------------------------------------------------------

    @property
    def interval(self) -> float:
        """The seconds between beats now: the sidecar's interval (less a
        margin) once known, at most ``interval`` when one was given."""
        with self._lock:
            expected = self._expected
        waits = [w for w in (self._interval, expected * _EARLY if expected else None) if w]
        return min(waits) if waits else self._default

    def beat(self) -> bool:
        """Sends one heartbeat now; False (and a log line) when it failed."""
        with self._lock:
            body = {"status": self._status, "note": self._note,
                    "metrics": dict(self._metrics) or None, "progress": self._progress}
        try:
            reply = self._send(**body)
        except Exception as exc:  # never let a heartbeat take the agent down
            self._failed(exc)
            return False
        expected = expected_interval(reply)
        with self._lock:
            if expected:
                self._expected = expected
        self.last_reply = reply
        self.sent += 1
        if self.failures:
            log.info("heartbeats reach the sidecar again after %d failed", self.failures)
        self.failures, self._failing_since = 0, None
        return True

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self.failures += 1
        if self._failing_since is None:
            self._failing_since = now
        if self.failures == 1 or now - self._last_warning >= _WARN_EVERY:
            self._last_warning = now
            log.warning("heartbeat failed (%d in a row for %.0fs), retrying in %.1fs: %s",
                        self.failures, now - self._failing_since, self.interval, exc)

    def start(self) -> "Heartbeats":
        """Starts the loop in a daemon thread (the first beat at once)."""
        if self._thread is None and self._task is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="agent-sidecar-heartbeats", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = 5.0) -> None:
        """Stops the loop; a beat under way may finish. Safe to call twice,
        and from another thread."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return not self._stop.is_set() and (self._thread is not None or self._task is not None)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.beat()
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "Heartbeats":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- asyncio ----------------------------------------------------------

    async def _run_async(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            await loop.run_in_executor(None, self.beat)
            await asyncio.sleep(self.interval)

    async def __aenter__(self) -> "Heartbeats":
        if self._thread is None and self._task is None:
            self._stop.clear()
            self._task = asyncio.ensure_future(self._run_async())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stops the asyncio loop; safe to call twice."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


def _check_status(value: str) -> str:
    if value not in STATUSES:
        raise ValueError(f"heartbeat status {value!r}: use \"ok\", \"degraded\" or \"failing\"")
    return value
