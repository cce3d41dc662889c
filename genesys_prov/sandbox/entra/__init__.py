"""Entra's hosted provisioning job for the "PureCloud by Genesys" gallery app, emulated.

* :mod:`.schema` — the job's ``synchronizationSchema``: the two files the sandbox serves
  (``gallery_schema.json``, the gallery app's default mappings for Genesys, and
  ``customised_schema.json``, the same customised: an expression, a default, an on-create
  mapping, a second matching attribute and a scoping filter of two OR groups), and
  reading one the way Entra's job does.
* :mod:`.job` — Entra's initial cycle from the sandbox Graph into the Genesys emulator
  (:func:`run_entra_job`), so the sandbox Genesys holds what Entra's job would have left.
* :mod:`.directory` — the directory of a tenant whose Entra job runs cleanly (E.164
  phone numbers).

``Sandbox(entra_job="gallery" | "customised")`` serves the job and its schema on the
sandbox Graph and pre-populates the sandbox Genesys with one emulated cycle.
"""

from __future__ import annotations

from genesys_prov.sandbox.entra.directory import e164_directory
from genesys_prov.sandbox.entra.job import EntraJobReport, JobFailure, run_entra_job
from genesys_prov.sandbox.entra.schema import SCHEMA_KINDS, load_schema, read_schema

__all__ = [
    "SCHEMA_KINDS",
    "EntraJobReport",
    "JobFailure",
    "e164_directory",
    "load_schema",
    "read_schema",
    "run_entra_job",
]
