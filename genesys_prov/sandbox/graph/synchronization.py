"""The ``/v1.0`` synchronization resources of the enterprise application: Entra's hosted
provisioning job for the Genesys gallery app (``synchronization/jobs``), one job, and the
job's ``synchronizationSchema`` (permission ``Synchronization.Read.All``).

The job is served only once :meth:`SynchronizationResources.serve_synchronization_job`
was called (``Sandbox(entra_job=...)`` does it); before that the app has no job, as an
enterprise application whose provisioning was never configured (an empty list, 404 for
a job id). Tests set the job's state with :meth:`set_synchronization_state`.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import Any

from genesys_prov.sandbox._http import Request
from genesys_prov.sandbox.graph.answers import GraphError
from genesys_prov.sandbox.graph.encoding import now_iso
from genesys_prov.sandbox.graph.service_principal import ServicePrincipalResources

#: The gallery template of "PureCloud by Genesys" (the prefix of its job ids).
TEMPLATE_ID = "PureCloudByGenesys"
#: The permissions that may read the job and its schema.
SYNCHRONIZATION_PERMISSIONS = ("Synchronization.Read.All", "Synchronization.ReadWrite.All")
#: Job states a test can set (``status.code``) and the schedule state each implies.
JOB_STATES = {"Active": "Active", "Paused": "Disabled", "Quarantine": "Active",
              "NotRun": "Active", "NotConfigured": "Disabled"}
#: Quarantine reasons Entra documents (``synchronizationStatus.quarantine.reason``).
QUARANTINE_REASONS = ("EncounteredBaseEscrowThreshold", "EncounteredTotalEscrowThreshold",
                      "EncounteredEscrowProportionThreshold", "EncounteredQuarantineException",
                      "QuarantinedOnDemand", "TooManyDeletes", "IngestionInterrupted",
                      "Unknown")
_NEVER = "0001-01-01T00:00:00Z"


def job_id_for(tenant_id: str, service_principal_id: str) -> str:
    """The job id Entra gives the gallery app's job: ``<template>.<32 hex>.<32 hex>``."""
    return f"{TEMPLATE_ID}.{uuid.UUID(tenant_id).hex}.{uuid.UUID(service_principal_id).hex}"


def execution(*, entitled: int, exported: int, imported: int, state: str = "Succeeded",
              began: str | None = None, ended: str | None = None,
              error: dict[str, Any] | None = None) -> dict[str, Any]:
    """A ``synchronizationTaskExecution`` (one cycle: counts, state, times, error)."""
    now = now_iso()
    return {"activityIdentifier": str(uuid.uuid4()), "countEntitled": entitled,
            "countEntitledForProvisioning": entitled, "countEscrowed": 0,
            "countEscrowedRaw": 0, "countExported": exported, "countExports": exported,
            "countImported": imported, "countImportedDeltas": 0,
            "countImportedReferenceDeltas": 0, "state": state,
            "timeBegan": began or now, "timeEnded": ended or now, "error": error}


@dataclass
class SynchronizationJob:
    """The emulated provisioning job: its id, the schema it serves, its state."""

    id: str
    schema: dict[str, Any]
    code: str = "Active"
    quarantine: dict[str, Any] | None = None
    last_execution: dict[str, Any] | None = None
    last_successful: dict[str, Any] | None = None
    settings: list[dict[str, str]] = field(default_factory=lambda: [
        {"name": "QuarantineTooManyDeletesThreshold", "value": "500"},
        {"name": "AzureIngestionAttributeOptimization", "value": "False"},
    ])
    steady_state: str = _NEVER

    def resource(self) -> dict[str, Any]:
        """The ``synchronizationJob`` as Graph returns it."""
        return {
            "id": self.id,
            "templateId": TEMPLATE_ID,
            "schedule": {"expiration": None, "interval": "PT40M",
                         "state": JOB_STATES[self.code]},
            "status": {
                "code": self.code,
                "countSuccessiveCompleteFailures": 1 if self.code == "Quarantine" else 0,
                "escrowsPruned": False,
                "lastExecution": copy.deepcopy(self.last_execution),
                "lastSuccessfulExecution": copy.deepcopy(self.last_successful),
                "lastSuccessfulExecutionWithExports": copy.deepcopy(self.last_successful),
                "progress": [],
                "quarantine": copy.deepcopy(self.quarantine),
                "steadyStateFirstAchievedTime": self.steady_state,
                "steadyStateLastAchievedTime": self.steady_state,
                "synchronizedEntryCountByType": [],
                "troubleshootingUrl": None,
            },
            "synchronizationJobSettings": copy.deepcopy(self.settings),
        }


class SynchronizationResources(ServicePrincipalResources):
    """The handlers of the synchronization routes, and the helpers that set the job."""

    #: The app's provisioning job (None: provisioning was never configured).
    synchronization_job: SynchronizationJob | None = None

    def serve_synchronization_job(self, schema: dict[str, Any],
                                  job_id: str | None = None) -> SynchronizationJob:
        """Give the enterprise app a provisioning job serving ``schema`` (state Active,
        never run); returns it. The schema's ``id`` becomes the job's id."""
        with self._lock:
            jid = job_id or job_id_for(self.tenant_id, str(self.service_principal["id"]))
            served = copy.deepcopy(schema)
            served["id"] = jid
            self.synchronization_job = SynchronizationJob(jid, served)
            return self.synchronization_job

    def set_synchronization_state(
        self, code: str, *, reason: str = "EncounteredBaseEscrowThreshold",
        error: tuple[str, str] = ("SystemForCrossDomainIdentityManagementServiceIncompatible",
                                  "The SCIM endpoint is not reachable."),
        last_execution: dict[str, Any] | None = None,
    ) -> None:
        """Set the job's ``status.code`` (Active, Paused, Quarantine, NotRun); a quarantine
        carries ``reason`` and ``error`` (code, message); ``last_execution`` replaces the
        last cycle (see :func:`execution`)."""
        if code not in JOB_STATES:
            raise ValueError(f"job state must be one of {sorted(JOB_STATES)}")
        if code == "Quarantine" and reason not in QUARANTINE_REASONS:
            raise ValueError(f"quarantine reason must be one of {QUARANTINE_REASONS}")
        with self._lock:
            job = self.synchronization_job
            if job is None:
                raise RuntimeError("no synchronization job: call serve_synchronization_job")
            job.code = code
            job.quarantine = None
            if code == "Quarantine":
                now = now_iso()
                job.quarantine = {"currentBegan": now, "nextAttempt": now, "reason": reason,
                                  "seriesBegan": now, "seriesCount": 1,
                                  "error": {"code": error[0], "message": error[1],
                                            "tenantActionable": True}}
            if last_execution is not None:
                job.last_execution = last_execution
                if last_execution.get("state") != "Failed":
                    job.last_successful = last_execution

    def record_synchronization_cycle(self, cycle: dict[str, Any]) -> None:
        """Record one finished cycle (a :func:`execution`) as the job's last; a cycle that
        did not fail also becomes the last successful one and marks steady state."""
        with self._lock:
            job = self.synchronization_job
            if job is None:
                raise RuntimeError("no synchronization job: call serve_synchronization_job")
            job.last_execution = cycle
            if cycle.get("state") != "Failed":
                job.last_successful = cycle
                job.steady_state = str(cycle.get("timeEnded") or now_iso())

    def _sync_context(self, sp_id: str, rest: str) -> str:
        """The ``@odata.context`` of a synchronization answer."""
        return (f"{self.graph_url}/v1.0/$metadata#servicePrincipals('{sp_id}')"
                f"/synchronization/{rest}")

    def _no_query_options(self, request: Request) -> None:
        """400 for any ``$`` query option (none is emulated on these routes)."""
        for name in request.query:
            if name.startswith("$"):
                raise GraphError(400, "BadRequest",
                                 f"Query option '{name}' is not allowed on synchronization "
                                 "resources in the sandbox.")

    def _find_job(self, key: str, job_id: str) -> tuple[str, SynchronizationJob]:
        """(service principal id, the job), else 404."""
        sp = self._find_service_principal(key)
        job = self.synchronization_job
        if job is None or job.id.lower() != job_id.lower():
            raise GraphError(404, "ResourceNotFound",
                             f"The requested synchronization job '{job_id}' was not found.")
        return str(sp["id"]), job

    def _sync_jobs(self, request: Request, key: str) -> dict[str, Any]:
        """``GET /v1.0/servicePrincipals/{id}/synchronization/jobs``."""
        self._no_query_options(request)
        sp_id = str(self._find_service_principal(key)["id"])
        job = self.synchronization_job
        return {"@odata.context": self._sync_context(sp_id, "jobs"),
                "value": [] if job is None else [job.resource()]}

    def _sync_job(self, request: Request, key: str, job_id: str) -> dict[str, Any]:
        """``GET /v1.0/servicePrincipals/{id}/synchronization/jobs/{jobId}``."""
        self._no_query_options(request)
        sp_id, job = self._find_job(key, job_id)
        return {"@odata.context": self._sync_context(sp_id, "jobs/$entity"), **job.resource()}

    def _sync_schema(self, request: Request, key: str, job_id: str) -> dict[str, Any]:
        """``GET /v1.0/servicePrincipals/{id}/synchronization/jobs/{jobId}/schema``."""
        self._no_query_options(request)
        sp_id, job = self._find_job(key, job_id)
        return {"@odata.context": self._sync_context(sp_id, f"jobs('{job.id}')/schema/$entity"),
                **copy.deepcopy(job.schema)}
