"""Incidents and the :class:`Notifier`: at most one email per incident (when it opens,
optionally when it closes), not one per run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from genesys_prov.notify.email import one_line, send_email, subject_line
from genesys_prov.notify.settings import (
    EmailConfig,
)


@dataclass(frozen=True)
class Incident:
    """Something a run found that deserves one email while it lasts."""

    key: str
    """Stable identity across runs, e.g. ``"failures"``, ``"held"``, ``"quarantine"``."""
    subject: str
    body: str


class Notifier:
    """One email per incident, not one per run.

    An incident *opens* the first run it appears in (one email), stays open silently while
    later runs keep reporting it, and *closes* the first run it is absent from: silently,
    or with a "resolved" email when its key is in ``resolved_subjects``.

    Decisions:

    * An incident is marked open even when its email failed, and the failure is returned
      for the caller to log. A broken mail server therefore costs one lost email per
      incident, never a storm of retries once it comes back. Likewise a failed "resolved"
      email is not retried.
    * With ``config`` ``None`` nothing is sent but open incidents are still tracked, so
      turning email on later does not announce incidents that were already open.
    * The open set maps key -> the subject that was sent when the incident opened; a
      "resolved" email quotes it.
    * ``save_open`` is called once per :meth:`update`, after sending. Exceptions from
      ``load_open``/``save_open`` propagate (they are the caller's storage); exceptions
      from ``sender`` do not (they become a returned message).
    """

    def __init__(
        self,
        config: EmailConfig | None,
        load_open: Callable[[], dict[str, str]],
        save_open: Callable[[dict[str, str]], None],
        sender: Callable[[EmailConfig, str, str], str | None] = send_email,
    ) -> None:
        """``load_open``/``save_open`` read and persist the open incidents (key ->
        subject); ``sender`` is :func:`send_email` unless a test replaces it."""
        self._config = config
        self._load_open = load_open
        self._save_open = save_open
        self._sender = sender

    def update(
        self, current: Sequence[Incident], resolved_subjects: Mapping[str, str] | None = None
    ) -> list[str]:
        """Email the incidents of ``current`` that just opened and, for closed incidents
        whose key is in ``resolved_subjects``, a "resolved" email with that subject.
        Persist the new open set and return one human-readable line per email attempted
        (``"sent: <subject>"`` or ``"email failed: <subject>: <error>"``)."""
        previous = self._load_open() or {}
        resolved_subjects = resolved_subjects or {}
        results: list[str] = []
        now_open: dict[str, str] = {}
        for incident in current:
            if incident.key in now_open:
                continue  # the same incident twice in one run: one email
            if incident.key in previous:
                now_open[incident.key] = previous[incident.key]
                continue
            subject = subject_line(incident.subject)
            now_open[incident.key] = subject
            self._send(subject, incident.body, results)
        for key, opened_subject in previous.items():
            if key in now_open or key not in resolved_subjects:
                continue
            stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            body = (f"Resolved: {opened_subject}\n\n"
                    f"genesys-prov no longer reports this incident (as of {stamp}).\n")
            self._send(subject_line(resolved_subjects[key]), body, results)
        self._save_open(now_open)
        return results

    def _send(self, subject: str, body: str, results: list[str]) -> None:
        if self._config is None:
            return
        try:
            error = self._sender(self._config, subject, body)
        except Exception as exc:  # a custom sender broke its contract; still never raise
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            results.append(one_line(f"sent: {subject}"))
        else:
            results.append(one_line(f"email failed: {subject}: {error}"))
