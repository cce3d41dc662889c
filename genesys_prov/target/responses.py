"""SCIM error responses: what a SCIM server (or the OAuth endpoint in front of it) said
when it refused a request, as a readable :class:`~genesys_prov.errors.ScimError`."""

from __future__ import annotations

import requests

from genesys_prov import redact
from genesys_prov.errors import ScimError


def scim_error(response: requests.Response, method: str, path: str) -> ScimError:
    """Turn an error response into a readable :class:`ScimError` (status, scimType,
    detail), whatever the body looks like."""
    detail = ""
    scim_type = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = str(body.get("detail") or body.get("message") or body.get("error_description")
                     or body.get("error") or "")
        scim_type = body.get("scimType")
    if not detail:
        detail = (response.reason or "error") if not response.text else response.text[:200]
    return ScimError(response.status_code, redact.scrub(detail), scim_type, method, path)
