"""HTTP plumbing shared by the Graph reader and the SCIM client.

- :func:`make_session`: the one session factory (TLS verification, connection pool sized
  for the workers, a User-Agent).
- :class:`RateLimiter`: one exact limiter shared by every worker thread of a side: never
  more than ``per_minute`` starts in any 60-s window as the server sees them (a request's
  :class:`Slot` is held until 60 s after its answer), evenly spaced; a 429 from the server
  pauses all of them for ``Retry-After``.
- :class:`_Session` (through :func:`make_session`): the environment (proxies, CA bundle
  variables) is looked up once per host, not on every request.
- :class:`HttpClient`: every request has a timeout; 429 is honoured for every method;
  5xx and connection errors are retried only for idempotent requests; a request that
  certainly never reached the server (connection refused, DNS, connect timeout) is retried
  whatever its method; counts requests by method for the benchmark and the summary.
- :func:`describe_transport_error`: one readable line for a network failure (host, what
  happened, what to check), never a urllib3 repr.
"""

from __future__ import annotations

import bisect
import collections
import email.utils
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from genesys_prov import __version__, redact
from genesys_prov.errors import EXIT_CONNECT, GenesysProvError

log = logging.getLogger(__name__)

_SSL_REASON = re.compile(r"\]\s*([^\]]+?)\s*(?:\(_ssl\.c:\d+\))?\s*$")
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
USER_AGENT = f"genesys-prov/{__version__}"


class _Session(requests.Session):
    """A session whose own ``verify`` wins over ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``,
    and which looks at the environment once per host, not once per request.

    Plain requests lets those variables override ``Session.verify``, so a configured
    ``ca_bundle`` would be ignored on machines that set them. Proxies from the environment
    are still honoured. The merged settings (proxies, CA bundle variables) are computed once
    per (scheme, host, the request's own proxies / stream / verify / cert, the session's
    own settings) and kept for the session's life: an environment changed mid-run is not
    seen until the next session."""

    def __init__(self) -> None:
        super().__init__()
        self._env_lock = threading.Lock()
        self._env_settings: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> Any:
        """The request's settings merged with the environment's (cached per host)."""
        key = self._settings_key(url, proxies, stream, verify, cert)
        if key is None:
            return self._merge(url, proxies, stream, verify, cert)
        with self._env_lock:
            settings = self._env_settings.get(key)
            if settings is None:
                settings = self._merge(url, proxies, stream, verify, cert)
                self._env_settings[key] = settings
        copied = dict(settings)
        if isinstance(copied.get("proxies"), dict):
            copied["proxies"] = dict(copied["proxies"])
        return copied

    def _settings_key(self, url: Any, proxies: Any, stream: Any, verify: Any,
                      cert: Any) -> tuple[Any, ...] | None:
        """What the merged settings depend on, or None when it cannot be a dict key."""
        try:
            parts = urlsplit(str(url))
            key = (parts.scheme.lower(), parts.netloc.lower(), _frozen(proxies), stream,
                   verify, _frozen(cert), self.trust_env, _frozen(self.proxies), self.stream,
                   self.verify, _frozen(self.cert))
            hash(key)
        except (TypeError, ValueError):
            return None
        return key

    def _merge(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        """requests' own merge, then the session's ``verify`` put back over the variables."""
        settings = super().merge_environment_settings(
            url, dict(proxies) if isinstance(proxies, dict) else proxies, stream, verify, cert)
        if verify is None and self.verify is not True:
            settings["verify"] = self.verify
        return settings


def _frozen(value: Any) -> Any:
    """A hashable stand-in for a settings value (dicts become sorted item tuples)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def make_session(verify: str | bool = True, pool_size: int = 4) -> requests.Session:
    """Return a :class:`requests.Session` set up the way every part of the tool uses it.

    ``verify`` is a CA bundle path or True; ``pool_size`` is the number of connections kept
    per host (at least 2): make it at least the number of requests that may run at once
    against one host, or urllib3 opens and throws away extra connections."""
    session = _Session()
    session.verify = verify
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(pool_size, 2), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


WINDOW = 60.0  # seconds: the server's rate-limit window


class Slot:
    """One request's place in a :class:`RateLimiter`: taken when the request starts, given
    back (:meth:`release`, or leaving the ``with`` block) when its answer has arrived (or it
    failed). The place stays counted until ``60 s`` after the release. ``started`` is when
    it was taken (on the limiter's clock)."""

    __slots__ = ("_limiter", "_released", "started")

    def __init__(self, limiter: RateLimiter | None, started: float) -> None:
        self._limiter = limiter
        self._released = False
        self.started = started

    def release(self) -> None:
        """The request is over (answered or failed); a second call does nothing."""
        if self._released:
            return
        self._released = True
        if self._limiter is not None:
            self._limiter._release()

    def __enter__(self) -> Slot:
        """The slot itself."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Release the slot."""
        self.release()


class RateLimiter:
    """An exact limiter shared by every worker thread of one side (readers and writers):
    never more than ``per_minute`` request starts in any 60-s window, as the server sees
    them. ``per_minute=0`` disables the limit (a :meth:`pause` is still honoured).

    How it counts — conservatively, because the server may see a request any time between
    our sending it and its answer arriving: a request's slot is held from its start until
    60 s after its answer (:meth:`Slot.release`). A request may start only while fewer than
    ``per_minute`` slots are held. Then for any 60-s window of server-side arrival times,
    the last request of the window to start found every other one still holding its slot,
    so no window holds more than ``per_minute`` — whatever the latencies.

    Spread, not bursts: starts also sit on an even grid, ``60/per_minute`` s apart (the
    first one at once). The Genesys emulator enforces a sliding 60-s window (429 with
    ``Retry-After`` when ``per_minute`` arrivals already fell in the last 60 s) and Genesys
    itself documents only "N per minute" (the algorithm is unconfirmed): a burst of a whole
    minute's allowance would satisfy a sliding window but not a token bucket of the same
    rate, while even spacing satisfies both and still runs at the floor (N requests in
    about N/``per_minute`` minutes). A start that wakes a little late (by less than one
    interval) keeps the grid, so wake-up lateness does not add up over a long run; the
    window rule above still caps every 60 s.

    :meth:`pause` (a server's ``Retry-After``) holds every worker: a worker re-checks the
    pause, the grid and the window under the lock each time it wakes, so one already
    sleeping towards its slot does not start inside a pause that began meanwhile.

    ``clock`` and ``sleep`` are injectable (tests use a fake clock). A worker waiting only
    for running requests to finish waits on a condition that :meth:`Slot.release`
    notifies."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.per_minute = per_minute
        self._interval = WINDOW / per_minute if per_minute > 0 else 0.0
        self._cond = threading.Condition(threading.Lock())
        self._clock = clock
        self._sleep = sleep
        self._paused_until = -math.inf
        self._grid = -math.inf  # the earliest start of the next request
        self._running = 0  # slots of requests not yet answered
        self._expiries: collections.deque[float] = collections.deque()  # answered: held until

    def acquire(self) -> Slot:
        """Block until the caller may start one request; returns its :class:`Slot`
        (release it when the answer has arrived: ``with limiter.acquire(): ...``)."""
        while True:
            with self._cond:
                got = self._try_start()
                if isinstance(got, Slot):
                    return got
                if got == math.inf:  # only running requests hold the slots
                    self._cond.wait()
                    continue
            self._sleep(got)

    def try_acquire(self) -> Slot | float:
        """Start one request now if allowed (its :class:`Slot`), else the seconds to wait
        before asking again (``math.inf``: until a running request is released)."""
        with self._cond:
            return self._try_start()

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (including one already waiting)."""
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _try_start(self) -> Slot | float:
        """Under the lock: take a slot now, or say how long to wait."""
        now = self._clock()
        if now < self._paused_until:
            return self._paused_until - now
        if self.per_minute <= 0:
            return Slot(None, now)
        expiries = self._expiries
        while expiries and expiries[0] <= now:
            expiries.popleft()
        excess = self._running + len(expiries) - self.per_minute
        if excess >= 0:  # the (excess+1)-th slot to come free; running ones have no end yet
            return expiries[excess] - now if excess < len(expiries) else math.inf
        if now < self._grid:
            return self._grid - now
        late = now - self._grid
        self._grid = (self._grid if late < self._interval else now) + self._interval
        self._running += 1
        return Slot(self, now)

    def _release(self) -> None:
        """A request's answer arrived: its slot is held 60 s more."""
        with self._cond:
            self._running -= 1
            expiry = self._clock() + WINDOW
            if self._expiries and expiry < self._expiries[-1]:  # a clock that stepped back
                bisect.insort(self._expiries, expiry)
            else:
                self._expiries.append(expiry)
            self._cond.notify_all()


def retry_after_seconds(value: str | None, default: float) -> float:
    """Parse a ``Retry-After`` header (seconds or an HTTP date); ``default`` if absent."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


class TransportError(GenesysProvError):
    """A request got no usable answer (connection failure, timeout, retries exhausted).

    ``ambiguous`` is True when a non-idempotent request may have been applied;
    ``transient`` is False for failures that trying again will not cure (TLS)."""

    exit_code = EXIT_CONNECT

    def __init__(self, message: str, ambiguous: bool = False,
                 response: requests.Response | None = None, transient: bool = True) -> None:
        super().__init__(redact.scrub(message))
        self.ambiguous = ambiguous
        self.response = response
        self.transient = transient


def never_sent(exc: BaseException) -> bool:
    """Did a request certainly not reach the server? True for a refused connection, a
    failed DNS lookup and a connect timeout: the request was never written, so sending it
    again cannot apply it twice, whatever its method."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason: Any = exc.args[0] if exc.args else None
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        return isinstance(reason, urllib3.exceptions.NewConnectionError |
                          urllib3.exceptions.ConnectTimeoutError)
    return False


# TLS failures that trying again cannot cure (as opposed to a connection cut mid-handshake).
_TLS_PERMANENT = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed", "WRONG_VERSION_NUMBER",
                  "doesn't match", "Hostname mismatch", "UNSUPPORTED_PROTOCOL",
                  "PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE", "no protocols available")


def tls_permanent(exc: BaseException) -> bool:
    """Is this TLS failure about trust or protocol (certificate, host name, TLS version):
    one that trying again cannot cure?"""
    text = str(exc)
    return any(marker in text for marker in _TLS_PERMANENT)


def _host(url: str) -> str:
    try:
        parts = urlsplit(url)
        return parts.netloc.rsplit("@", 1)[-1] or url
    except ValueError:
        return url


def describe_transport_error(exc: BaseException, url: str, timeout: float) -> str:
    """One line for a failed request: which host, what happened and what to check.

    >>> describe_transport_error(requests.exceptions.ReadTimeout(), "https://h/x", 30)
    'h did not answer within 30 s (the timeout setting)'
    """
    host = _host(url)
    reason: Any = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(reason or exc)
        found = _SSL_REASON.search(text)
        why = found.group(1).strip() if found else "the TLS handshake failed"
        if not tls_permanent(exc):
            return f"the TLS connection to {host} was cut ({why})"
        return (f"TLS failure talking to {host}: {why}; if the server uses a private "
                "CA, set ca_bundle in the configuration (or REQUESTS_CA_BUNDLE) to a PEM file "
                "holding it")
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return f"cannot resolve the host name of {host} (DNS lookup failed): check the URL"
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # before its base class
        return f"cannot connect to {host} (connection refused): is the server up and the URL right?"
    if isinstance(exc, requests.exceptions.ConnectTimeout) or \
            isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return f"connecting to {host} timed out after {timeout:g} s: is the host reachable?"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"{host} did not answer within {timeout:g} s (the timeout setting)"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError |
                  requests.exceptions.ContentDecodingError):
        return f"{host} sent a truncated or corrupt answer"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"the connection to {host} was reset or closed before an answer came"
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema |
                  requests.exceptions.InvalidSchema):
        return f"not a valid URL: {url}"
    return f"request to {host} failed: {type(exc).__name__}"


@dataclass
class RetryPolicy:
    """How many times and how long to retry."""

    max_throttle_retries: int = 25
    max_error_retries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    default_retry_after: float = 5.0
    max_retry_after: float = 300.0


@dataclass
class HttpClient:
    """Sends requests through one session and one limiter, with timeouts and safe retries.

    Example::

        client = HttpClient(make_session(), RateLimiter(300), timeout=30)
        response = client.request("GET", "https://api.example/Users", params={"count": 1})
    """

    session: requests.Session
    limiter: RateLimiter
    timeout: float = 30.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    throttled: int = 0
    retried: int = 0  # requests sent again after a network failure or a 5xx
    _count_lock: threading.Lock = field(default_factory=threading.Lock)
    _reached: set[str] = field(default_factory=set)  # hosts that answered at least once

    def request(
        self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
        json: Any = None, data: Any = None, headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None, auth: Any = None, count_as: str | None = None,
        give_up: Callable[[requests.Response], bool] | None = None,
    ) -> requests.Response:
        """Send one request, retrying as the policy allows; return the final response
        (which may be an HTTP error: the caller interprets statuses). ``count_as`` files
        the request under another name in :attr:`counts` (``token`` for OAuth); a 429
        that ``give_up`` accepts is returned at once instead of waited out.

        A request that never reached the server is sent again with backoff; a host that
        has never answered gets one quick retry, so a wrong URL fails fast while a server
        that goes down mid-run is waited for. Raises :class:`TransportError` with one
        readable line when no answer came."""
        method = method.upper()
        safe = method in IDEMPOTENT if idempotent is None else idempotent
        host = _host(url)
        throttles = errors = 0
        while True:
            response = self._send(method, url, count_as, params=params, json=json, data=data,
                                  headers=headers, timeout=self.timeout, auth=auth)
            if isinstance(response, requests.RequestException):
                errors += 1
                self._wait_after_transport_error(response, method, url, host, safe, errors)
                continue
            self._reached.add(host)
            if response.status_code == 429:
                throttles += 1
                with self._count_lock:
                    self.throttled += 1
                if throttles > self.policy.max_throttle_retries or \
                        (give_up is not None and give_up(response)):
                    return response
                self._wait_out_throttle(response, method, url)
                continue
            if response.status_code in RETRY_STATUSES and safe:
                errors += 1
                if errors > self.policy.max_error_retries:
                    return response
                self._wait_after_server_error(response, method, url, errors)
                continue
            return response

    def _send(self, method: str, url: str, count_as: str | None,
              **kwargs: Any) -> requests.Response | requests.RequestException:
        """Send once inside a limiter slot (held until the answer has arrived); a network
        failure is returned, not raised."""
        with self.limiter.acquire():
            with self._count_lock:
                self.counts[count_as or method] += 1
            try:
                return self.session.request(method, url, **kwargs)
            except requests.RequestException as exc:
                return exc
            except (OSError, ValueError) as exc:  # e.g. a CA bundle that vanished, a bad URL
                raise TransportError(f"{method} {_short(url)}: {type(exc).__name__}: {exc}",
                                     transient=False) from exc

    def _wait_after_transport_error(self, exc: requests.RequestException, method: str,
                                    url: str, host: str, safe: bool, errors: int) -> None:
        """Raise :class:`TransportError` unless ``exc`` may be retried, else back off."""
        what = f"{method} {_short(url)}: {describe_transport_error(exc, url, self.timeout)}"
        if (isinstance(exc, requests.exceptions.SSLError) and tls_permanent(exc)) or \
                isinstance(exc, requests.exceptions.InvalidURL |
                           requests.exceptions.MissingSchema |
                           requests.exceptions.InvalidSchema):
            raise TransportError(what, transient=False) from exc
        unsent = never_sent(exc)
        if not safe and not unsent:
            raise TransportError(what, ambiguous=True) from exc
        limit = self.policy.max_error_retries if (host in self._reached or not unsent) \
            else min(1, self.policy.max_error_retries)
        if errors > limit:
            raise TransportError(what) from exc
        delay = self._backoff(errors)
        log.info("retrying in %.1fs after %s", delay, what)
        self._count_retry_and_sleep(delay)

    def _wait_out_throttle(self, response: requests.Response, method: str, url: str) -> None:
        """Pause every worker for the ``Retry-After`` of a 429 (capped by the policy)."""
        delay = min(
            retry_after_seconds(response.headers.get("Retry-After"),
                                self.policy.default_retry_after),
            self.policy.max_retry_after,
        )
        log.debug("429 from %s %s; waiting %.1fs", method, _short(url), delay)
        self.limiter.pause(delay)

    def _wait_after_server_error(self, response: requests.Response, method: str, url: str,
                                 errors: int) -> None:
        """Sleep before sending again after a retryable 5xx (``Retry-After`` or backoff)."""
        delay = retry_after_seconds(response.headers.get("Retry-After"),
                                    self._backoff(errors))
        delay = min(delay, self.policy.max_retry_after)
        log.info("HTTP %s from %s %s; retrying in %.1fs", response.status_code, method,
                 _short(url), delay)
        self._count_retry_and_sleep(delay)

    def _count_retry_and_sleep(self, delay: float) -> None:
        """Count one more retried request, then sleep ``delay`` seconds."""
        with self._count_lock:
            self.retried += 1
        self.sleep(delay)

    def _backoff(self, attempt: int) -> float:
        base = min(self.policy.backoff_cap, self.policy.backoff_base * 2 ** (attempt - 1))
        return float(base * (0.5 + random.random() / 2))


def _short(url: str) -> str:
    return redact.scrub(url.split("?", 1)[0])
