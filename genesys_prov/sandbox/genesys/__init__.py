"""The Genesys Cloud SCIM 2.0 emulator (behaviour: /work/shared/spec/genesys-scim.md).

Routes (base path ``/api/v2/scim/v2``)::

    POST   /oauth/token                     client credentials (Basic auth) → bearer token
    GET    /Users            POST /Users
    GET    /Users/{id}       PUT, PATCH, DELETE /Users/{id}
    GET    /Groups           (POST → 405: groups cannot be created over SCIM)
    GET    /Groups/{id}      PUT, PATCH /Groups/{id}   (DELETE → 405)
    GET    /Schemas[/{id}], /ResourceTypes[/{name}], /ServiceProviderConfig   (no token needed)

Decisions where Genesys' behaviour is unconfirmed (each is a deliberate, documented choice):

* ``POST /Groups`` and ``DELETE /Groups/{id}`` answer **405** with a SCIM error body and an
  ``Allow`` header (the route exists, the verb was withdrawn in 2021).
* RFC 7643 core User attributes Genesys does not implement (``name``, ``addresses``, …) are
  accepted and dropped; attributes no schema knows are ``400 invalidSyntax`` (bodies) or
  ``400 invalidPath`` (PATCH paths).
* A ``replace`` whose value-filter path matches nothing creates the element
  (``phoneNumbers[type eq "mobile"].value`` adds a mobile number); RFC 7644 would allow
  ``noTarget``, Genesys is lenient. A ``remove`` that matches nothing is a no-op.
* Booleans may arrive as the strings ``"True"``/``"False"`` (Entra has sent them so).
* Phone types and email types must be canonical values and unique per user; phone values must
  be E.164 or a tel URI (``tel:+nnnn;ext=nnn``).
* ``userName`` must look like an email address (it is the Genesys primary email).
* ``count`` > 25 without ``attributes``/``excludedAttributes`` is cut to 25 without an error
  (documented; Users and Groups; ``startIndex``/``itemsPerPage``/``totalResults`` stay
  consistent); a trimmed ``count`` is clamped to ``max_results`` (RFC 7644 §3.4.2.4 allows
  fewer).
* ``expensive_page_limit`` (off by default): a listing whose page size exceeds it and whose
  returned attributes include an expensive one (``externalId``, ``roles``, the enterprise
  ``manager``, ``routingSkills``, ``routingLanguages``) → 429 "internal resource limits",
  without ``Retry-After`` (waiting does not help; a smaller page or fewer attributes does).
* Attribute lists ignore names they do not know and sub-attributes of ``meta``
  (``attributes=userName,meta.version``); ``meta`` is always returned.
* ``phoneNumbers`` types ``other`` and ``microsoftteams`` share one Genesys field: writing one
  replaces the other (in one body, the later element wins).
* A deleted user's userName and emails stay reserved (``deleted_names``): re-creating a user
  with one of them → 409 ``uniqueness`` although a ``userName eq`` filter finds nobody.
* Only the documented user filters are accepted (``active eq false`` but not ``active eq true``);
  anything else is ``400 invalidFilter``.
* Order of checks on a SCIM request: injected throttle → rate limit → token → permission.
* Deleting a user removes it from its groups and clears it as anyone's manager.

The parts: :mod:`.emulator` (the whole, and the helpers tests use), :mod:`.app` (routing
and checks), :mod:`.limits`, :mod:`.auth`, :mod:`.discovery`, :mod:`.users`,
:mod:`.groups` (the endpoints), :mod:`.user_filters`, :mod:`.user_rules`,
:mod:`.user_store`, :mod:`.user_index`, :mod:`.group_store` (the org's state behind
them, on :mod:`.state`), :mod:`.paging`, :mod:`.exchange`, :mod:`.projection`,
:mod:`.patch`, :mod:`.coercion`, :mod:`.meta`, :mod:`.resource_types` and :mod:`.routes`.
"""

from __future__ import annotations

from genesys_prov.sandbox.genesys.emulator import GenesysEmulator
from genesys_prov.sandbox.genesys.exchange import scim_error_response
from genesys_prov.sandbox.genesys.paging import DEFAULT_COUNT, UNTRIMMED_PAGE_LIMIT
from genesys_prov.sandbox.genesys.resource_types import (
    DEFAULT_ROLE,
    EXPENSIVE_ATTRIBUTES,
    USER_EXTENSIONS,
    USER_SCHEMAS_LIST,
)
from genesys_prov.sandbox.genesys.routes import BASE_PATH, TOKEN_PATH
from genesys_prov.sandbox.genesys.user_rules import (
    DEFAULT_DIVISION,
    SHARED_PHONE_TYPES,
    XPC_AUTHORITY,
)

__all__ = [
    "BASE_PATH",
    "DEFAULT_COUNT",
    "DEFAULT_DIVISION",
    "DEFAULT_ROLE",
    "EXPENSIVE_ATTRIBUTES",
    "SHARED_PHONE_TYPES",
    "TOKEN_PATH",
    "UNTRIMMED_PAGE_LIMIT",
    "USER_EXTENSIONS",
    "USER_SCHEMAS_LIST",
    "XPC_AUTHORITY",
    "GenesysEmulator",
    "scim_error_response",
]
