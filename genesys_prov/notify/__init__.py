"""Email notifications: one email when an incident opens, optionally one when it closes.

Configured by the ``notify:`` section of ``genesys-prov.yaml``::

    notify:
      email:
        to: [ops@contoso.com, oncall@contoso.com]   # or a single string
        from: genesys-prov@contoso.com
        smtp_host: smtp.contoso.com
        smtp_port: 587          # default 587; 465 means implicit TLS (SMTPS)
        starttls: true          # default true; false = plain SMTP (loopback or trusted relay)
        username: ...           # optional, both or neither with password
        password: ${SMTP_PASSWORD}
        timeout: 30             # seconds per network operation, default 30

Sending never raises: :func:`send_email` returns ``None`` or a one-line, scrubbed error
message, because a broken mail server must never fail a sync. :class:`Notifier` turns the
incidents a run found into at most one email per incident (not one per run), remembering
which incidents are open through the caller's ``load_open`` / ``save_open`` callables.

Only the standard library is used (``smtplib``, ``email.message``, ``ssl``).
"""

from genesys_prov.notify.email import send_email
from genesys_prov.notify.incidents import Incident, Notifier
from genesys_prov.notify.settings import EmailConfig, parse_notify

__all__ = ["EmailConfig", "Incident", "Notifier", "parse_notify", "send_email"]
