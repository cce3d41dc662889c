"""Digests of the settings: what forces a full sync, what releases escrow, and what lets a
quarantined job probe at once."""

from __future__ import annotations

import hashlib
import json
import logging

from genesys_prov.config import Config
from genesys_prov.mapping.mappings import Mappings

log = logging.getLogger(__name__)


def settings_digest(config: Config, mappings: Mappings) -> str:
    """What, when it changes, forces a full sync: the mappings, the scope, the target."""
    src, tgt = config.source, config.target
    blob = json.dumps([mappings.digest, src.scope, src.service_principal_id, src.nested_groups,
                       src.exclude_default_access, tgt.url, tgt.flavor])
    return hashlib.sha256(blob.encode()).hexdigest()


def config_fingerprint(config: Config) -> str:
    """A digest of every setting and secret (never stored in the clear): when it changes,
    a quarantined job probes at once instead of waiting for its next probe."""
    blob = repr((config.source, config.target, config.ca_bundle, config.mappings_path))
    return hashlib.sha256(blob.encode()).hexdigest()
