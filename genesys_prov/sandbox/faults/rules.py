"""Fault rules: the :class:`Fault` to inject, the :class:`Rule` saying when, and the
:class:`RuleBook` a proxy keeps them in and consults for each request.

Decisions are deterministic: every rule draws from its own RNG seeded from the proxy's
``seed`` and the rule's position, so the n-th request a rule matches always gets the same
decision, whatever the thread interleaving.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Fault(StrEnum):
    """What the proxy does with one request."""

    #: Forward normally.
    PASS = "pass"
    #: Answer ``Rule.status`` without forwarding (SCIM error body unless ``Rule.body``).
    STATUS = "status"
    #: Read the request, do not forward it, reset the client connection (TCP RST).
    RESET_BEFORE = "reset_before"
    #: Forward (the upstream applies it), read the answer, reset the client connection.
    RESET_AFTER = "reset_after"
    #: Forward, then send the upstream's status, headers and Content-Length but only half the
    #: body, then close the connection.
    TRUNCATE = "truncate"
    #: Forward, then answer the upstream's status with an HTML body (``text/html``).
    GARBAGE = "garbage"
    #: Sleep ``Rule.delay`` seconds, then forward (even when the client has given up).
    DELAY = "delay"
    #: Take the target down, starting with this request (reset, not forwarded), as
    #: :meth:`FaultProxy.down` does; with ``Rule.delay`` > 0 it comes back after that long.
    #: Decided with the request, so "down after the n-th create" is exact (``skip=n``).
    DOWN = "down"


@dataclass
class Rule:
    """When (method, path regex, counters, probability) to inject which fault.

    Among the requests the rule matches (``method`` and ``path``), the first ``skip`` pass,
    then the fault is applied with ``probability`` (a skipped or not-drawn request passes:
    the rule still decided). After ``times`` applications the rule stops matching, so later
    rules get their turn.
    """

    fault: Fault
    #: HTTP method (case-insensitive), or None for any.
    method: str | None = None
    #: Regex searched in the request target (path and query), or None for any.
    path: str | None = None
    #: Regex searched in the request body (as UTF-8 text), or None for any: e.g. one user's
    #: userName, to fail that user's create only.
    request_body: str | None = None
    #: Apply to this many requests, then stop matching; None = unlimited.
    times: int | None = None
    #: Apply with this probability (from the rule's seeded RNG).
    probability: float = 1.0
    #: Let the first ``skip`` matching requests pass before applying.
    skip: int = 0
    #: STATUS: the status to answer.
    status: int = 503
    #: STATUS: extra response headers (e.g. ``{"Retry-After": "2"}``).
    headers: dict[str, str] = field(default_factory=dict)
    #: STATUS / GARBAGE: the body to send instead of the default one.
    body: bytes | None = None
    #: DELAY: seconds to sleep before forwarding. DOWN: seconds until the target is back
    #: (0: down until :meth:`FaultProxy.up`).
    delay: float = 0.0
    #: Called (in the request's thread, before the fault) each time the rule applies: e.g.
    #: with ``Fault.PASS``, ``skip=8, times=1``, revoke the tokens at the ninth create.
    action: Callable[[], object] | None = None


@dataclass
class ArmedRule:
    """A rule as the proxy holds it: compiled, with its counters and its RNG."""

    rule: Rule
    index: int
    rng: random.Random
    pattern: re.Pattern[str] | None
    method: str | None
    body_pattern: re.Pattern[str] | None = None
    seen: int = 0
    applied: int = 0


class RuleBook:
    """The rules part of a :class:`~genesys_prov.sandbox.faults.FaultProxy`: adding,
    clearing and counting rules, and deciding a request's fate (under the proxy's lock)."""

    seed: int
    _lock: threading.RLock
    _rules: list[ArmedRule]

    def add(self, *rules: Rule) -> None:
        """Append rules; they are checked in order and the first matching one decides."""
        with self._lock:
            for rule in rules:
                if not 0.0 <= rule.probability <= 1.0:
                    raise ValueError(f"probability must be in [0, 1], not {rule.probability}")
                if (rule.times is not None and rule.times < 0) or rule.skip < 0:
                    raise ValueError("times and skip must not be negative")
                if rule.delay < 0:
                    raise ValueError("delay must not be negative")
                index = len(self._rules)
                self._rules.append(ArmedRule(
                    rule=rule,
                    index=index,
                    rng=random.Random(f"fault-proxy:{self.seed}:{index}"),
                    pattern=re.compile(rule.path) if rule.path is not None else None,
                    method=rule.method.upper() if rule.method is not None else None,
                    body_pattern=re.compile(rule.request_body)
                    if rule.request_body is not None else None,
                ))

    def clear(self) -> None:
        """Remove every rule (the log is kept)."""
        with self._lock:
            self._rules.clear()

    def applied(self, index: int) -> int:
        """How many times the rule at ``index`` (in :meth:`add` order) injected its fault."""
        with self._lock:
            return self._rules[index].applied

    def _decide(self, method: str, target: str,
                body: str = "") -> tuple[int | None, Rule | None]:
        """``(index of the deciding rule or None, the rule whose fault to inject or None)``.

        A matching rule that lets the request pass (``skip``, ``probability``) still decides:
        its index is returned with no rule.
        """
        with self._lock:
            for armed in self._rules:
                if armed.method is not None and armed.method != method.upper():
                    continue
                if armed.pattern is not None and not armed.pattern.search(target):
                    continue
                if armed.body_pattern is not None and not armed.body_pattern.search(body):
                    continue
                rule = armed.rule
                if rule.times is not None and armed.applied >= rule.times:
                    continue
                armed.seen += 1
                if armed.seen <= rule.skip:
                    return armed.index, None
                if rule.probability < 1.0 and armed.rng.random() >= rule.probability:
                    return armed.index, None
                armed.applied += 1
                return armed.index, rule
            return None, None
