"""Kubernetes: submit, follow and delete maru's jobs through the official ``kubernetes`` client
(``pip install "maru[launch]"``), set up from kubeconfig or the in-cluster service account, or from
an explicit ``api_client``. What is submitted is rendered by :mod:`maru.launch.k8s_jobs` (a
Kubeflow Trainer v2 ``TrainJob`` by default, a ``JobSet`` or a legacy ``PyTorchJob``, see there for
what each does under Kueue and when node 0 is lost) from the pieces in
:mod:`maru.launch.k8s_objects`; both are re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .backend import Backend, JobHandle, JobState, JobStatus, LaunchError
from .k8s_jobs import jobset, manifests, pytorchjob, trainjob
from .k8s_objects import (
    JOBSET,
    MANAGED_BY,
    PYTORCHJOB,
    QUEUE_LABEL,
    RESOURCES,
    TRAINJOB,
    Resource,
    options,
    render_yaml,
)

if TYPE_CHECKING:
    from .spec import JobSpec

__all__ = [
    "JOBSET",
    "PYTORCHJOB",
    "QUEUE_LABEL",
    "TRAINJOB",
    "KubernetesBackend",
    "jobset",
    "manifests",
    "pytorchjob",
    "render_yaml",
    "trainjob",
]

# -------------------------------------------------------------------------------------- backend
_STATE_OF_PYTORCHJOB: dict[str, JobState] = {
    "Succeeded": "succeeded",
    "Failed": "failed",
    "Running": "running",
    "Restarting": "running",
    "Suspended": "pending",
    "Created": "pending",
}


@dataclass(frozen=True)
class _JobRef:
    namespace: str
    resource: Resource | None  # None: not said; look for a PyTorchJob, then a JobSet
    name: str

    def job_id(self, resource: Resource) -> str:
        return f"{self.namespace}/{resource.kind.lower()}/{self.name}"


class KubernetesBackend(Backend):
    """Submit, follow and delete jobs through the Kubernetes API.

    Job ids are ``<namespace>/<kind>/<name>`` (``default/pytorchjob/fmnist``); ``<kind>/<name>``
    and a bare ``<name>`` work too, in ``namespace``."""

    name = "kubernetes"

    def __init__(
        self,
        namespace: str = "default",
        *,
        api_client: Any = None,
        kubeconfig: str | None = None,
        context: str | None = None,
    ) -> None:
        self.namespace = namespace
        self._api_client = api_client
        self._kubeconfig = kubeconfig
        self._context = context

    # ------------------------------------------------------------------ client
    def _client(self) -> Any:
        if self._api_client is not None:
            return self._api_client
        try:
            from kubernetes import client, config
        except ImportError:
            raise ConfigurationError(
                "submitting to Kubernetes needs the official client: "
                'pip install "maru[launch]" (or pip install kubernetes)'
            ) from None
        try:
            config.load_kube_config(config_file=self._kubeconfig, context=self._context)
        except (config.ConfigException, OSError) as kube_error:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                raise ConfigurationError(
                    f"no Kubernetes configuration found ({kube_error}): set KUBECONFIG or create "
                    "~/.kube/config, or run inside a cluster with a service account"
                ) from None
        self._api_client = client.ApiClient()
        return self._api_client

    def _custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self._client())

    def _core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self._client())

    @staticmethod
    def _api_error(exc: Exception, doing: str) -> LaunchError:
        status = getattr(exc, "status", None)
        body = getattr(exc, "body", None) or str(exc)
        try:
            message = json.loads(body).get("message", body)
        except (TypeError, ValueError, AttributeError):
            message = body
        hint = {
            401: "check your credentials (kubeconfig user or token)",
            403: "your account may not do this in that namespace; ask for RBAC access",
            404: "the job, the namespace or the CRD is not there (is the operator installed?)",
            409: "an object of that name exists already; delete it or rename the job",
            422: "the cluster rejected the object; compare it with `maru launch --dry-run`",
        }.get(status or 0, "")
        text = f"Kubernetes {doing} failed" + (f" ({status})" if status else "") + f": {message}"
        return LaunchError(text + (f"; {hint}" if hint else ""))

    def _parse(self, job_id: str) -> _JobRef:
        parts = [p for p in job_id.strip().split("/") if p]
        if len(parts) == 3 and parts[1].lower() in RESOURCES:
            return _JobRef(parts[0], RESOURCES[parts[1].lower()], parts[2])
        if len(parts) == 2 and parts[0].lower() in RESOURCES:
            return _JobRef(self.namespace, RESOURCES[parts[0].lower()], parts[1])
        if len(parts) == 2:
            return _JobRef(parts[0], None, parts[1])
        if len(parts) == 1:
            return _JobRef(self.namespace, None, parts[0])
        raise ConfigurationError(
            f"{job_id!r} is not a Kubernetes job id: use <namespace>/<pytorchjob|jobset>/<name>"
        )

    def _get(self, ref: _JobRef) -> tuple[Resource, dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException

        candidates = [ref.resource] if ref.resource else [TRAINJOB, PYTORCHJOB, JOBSET]
        for resource in candidates:
            try:
                obj = self._custom().get_namespaced_custom_object(
                    resource.group, resource.version, ref.namespace, resource.plural, ref.name
                )
                return resource, obj
            except ApiException as exc:
                if exc.status != 404:
                    raise self._api_error(exc, f"reading {ref.name}") from None
        kinds = " or ".join(r.kind for r in candidates)
        raise LaunchError(
            f"no {kinds} {ref.name!r} in namespace {ref.namespace!r}: it finished and was deleted, "
            "was cancelled, or the id is wrong (maru jobs ls lists submitted jobs)"
        )

    # ------------------------------------------------------------------ Backend
    def render(self, spec: JobSpec) -> str:
        return render_yaml(manifests(spec))

    def submit(self, spec: JobSpec) -> JobHandle:
        from kubernetes.client.exceptions import ApiException

        objects = manifests(spec)
        job = objects[-1]
        namespace = job["metadata"]["namespace"]
        resource = next(r for r in RESOURCES.values() if r.kind == job["kind"])
        for obj in objects[:-1]:  # the checkpoint claim; one left from an earlier run is reused
            try:
                self._core().create_namespaced_persistent_volume_claim(namespace, obj)
            except ApiException as exc:
                if exc.status != 409:
                    raise self._api_error(exc, f"creating claim {obj['metadata']['name']}") from None
        try:
            self._custom().create_namespaced_custom_object(
                resource.group, resource.version, namespace, resource.plural, job
            )
        except ApiException as exc:
            raise self._api_error(exc, f"creating {resource.kind} {spec.name}") from None
        ref = _JobRef(namespace, resource, spec.name)
        extra = {"namespace": namespace, "kind": resource.kind}
        if options(spec).queue:
            extra["queue"] = str(options(spec).queue)
        return JobHandle(
            backend=self.name,
            job_id=ref.job_id(resource),
            name=spec.name,
            spec_path=str(spec.source) if spec.source else None,
            extra=extra,
        )

    def status(self, job_id: str) -> JobStatus:
        ref = self._parse(job_id)
        resource, obj = self._get(ref)
        return self._status_of(resource, obj, ref)

    def _status_of(
        self, resource: Resource, obj: dict[str, Any], ref: _JobRef, count_restarts: bool = True
    ) -> JobStatus:
        """``count_restarts`` sums the pods' container restarts (one more request; a PyTorchJob's
        status has no restart count of its own)."""
        if resource is PYTORCHJOB:
            state, detail = _pytorchjob_state(obj)
            restarts = self._pod_restarts(resource, ref) if count_restarts else 0
        elif resource is TRAINJOB:
            state, detail = _trainjob_state(obj)
            restarts = self._pod_restarts(resource, ref) if count_restarts else 0
        else:
            state, detail = _jobset_state(obj)
            restarts = int((obj.get("status") or {}).get("restarts") or 0)
        return JobStatus(
            job_id=ref.job_id(resource),
            state=state,
            detail=str(detail),
            restarts=restarts,
            name=ref.name,
            backend=self.name,
        )

    def _pods(self, resource: Resource, ref: _JobRef, offset: int = 0) -> list[Any]:
        from kubernetes.client.exceptions import ApiException

        try:
            found = self._core().list_namespaced_pod(
                ref.namespace, label_selector=f"{resource.pod_label}={ref.name}"
            )
        except ApiException as exc:
            raise self._api_error(exc, f"listing the pods of {ref.name}") from None
        return sorted(found.items or [], key=lambda pod: _node_index(pod, offset))

    def _pod_restarts(self, resource: Resource, ref: _JobRef) -> int:
        total = 0
        for pod in self._pods(resource, ref):
            for container in (pod.status.container_statuses if pod.status else None) or []:
                total += int(container.restart_count or 0)
        return total

    def logs(self, job_id: str, *, follow: bool = False, rank: int | None = None) -> Iterator[str]:
        """Lines of the pods' output, node 0 first. With several pods and no ``rank`` each line
        starts with ``[<pod>]``; ``follow`` streams one pod (``rank``, default node 0)."""
        from kubernetes.client.exceptions import ApiException

        ref = self._parse(job_id)
        resource, obj = self._get(ref)
        offset = _worker_offset(obj)
        pods = self._pods(resource, ref, offset)
        if not pods:
            raise LaunchError(f"{ref.name} has no pods yet (pending or suspended): try again later")
        if rank is not None:
            chosen = [p for p in pods if _node_index(p, offset)[0] == rank]
            if not chosen:
                names = ", ".join(p.metadata.name for p in pods)
                raise LaunchError(f"{ref.name} has no pod for node {rank}; its pods: {names}")
            pods = chosen[:1]
        elif follow:
            pods = pods[:1]
        prefix = len(pods) > 1
        for pod in pods:
            name = pod.metadata.name
            try:
                response = self._core().read_namespaced_pod_log(
                    name, ref.namespace, container=resource.container, follow=follow,
                    _preload_content=False,
                )
            except ApiException as exc:
                raise self._api_error(exc, f"reading the log of {name}") from None
            for line in _lines(response):
                yield f"[{name}] {line}" if prefix else line

    def cancel(self, job_id: str) -> None:
        """Delete the job (its pods go with it); the checkpoint claim is kept for a later run."""
        from kubernetes.client.exceptions import ApiException

        ref = self._parse(job_id)
        resource, _ = self._get(ref) if ref.resource is None else (ref.resource, {})
        try:
            self._custom().delete_namespaced_custom_object(
                resource.group,
                resource.version,
                ref.namespace,
                resource.plural,
                ref.name,
                body={"propagationPolicy": "Background"},
            )
        except ApiException as exc:
            raise self._api_error(exc, f"deleting {resource.kind} {ref.name}") from None

    def list(self, registry: Any = None) -> list[JobStatus]:
        """Statuses of the jobs maru created in this backend's namespace (asked of the cluster)."""
        from kubernetes.client.exceptions import ApiException

        found: list[JobStatus] = []
        for resource in (TRAINJOB, PYTORCHJOB, JOBSET):
            try:
                answer = self._custom().list_namespaced_custom_object(
                    resource.group,
                    resource.version,
                    self.namespace,
                    resource.plural,
                    label_selector=f"{MANAGED_BY[0]}={MANAGED_BY[1]}",
                )
            except ApiException as exc:
                if exc.status == 404:  # that CRD is not installed
                    continue
                raise self._api_error(exc, f"listing {resource.plural}") from None
            for obj in answer.get("items") or []:
                if _owned_by_trainjob(obj):  # listed as its TrainJob
                    continue
                ref = _JobRef(self.namespace, resource, obj["metadata"]["name"])
                found.append(self._status_of(resource, obj, ref, count_restarts=False))
        return found


def _true_conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    status = obj.get("status") or {}
    return {c.get("type"): c for c in status.get("conditions") or [] if c.get("status") == "True"}


def _said(condition: dict[str, Any], fallback: str) -> str:
    return str(condition.get("message") or condition.get("reason") or fallback)


def _pytorchjob_state(obj: dict[str, Any]) -> tuple[JobState, str]:
    state: JobState = "pending"
    detail = "waiting for the controller"
    if obj.get("spec", {}).get("runPolicy", {}).get("suspend"):
        detail = "suspended (waiting for Kueue admission)"
    conditions = [c for c in (obj.get("status") or {}).get("conditions") or []
                  if c.get("status") == "True"]
    if conditions:
        last = conditions[-1]
        state = _STATE_OF_PYTORCHJOB.get(last.get("type", ""), "unknown")
        detail = _said(last, last.get("type", ""))
    return state, detail


def _jobset_state(obj: dict[str, Any]) -> tuple[JobState, str]:
    return _set_state(obj, complete="Completed", jobs="replicatedJobsStatus")


def _trainjob_state(obj: dict[str, Any]) -> tuple[JobState, str]:
    """Trainer v2's conditions (``Complete``, ``Failed``, ``Suspended``) and its jobs' counts."""
    return _set_state(obj, complete="Complete", jobs="jobsStatus")


def _set_state(obj: dict[str, Any], *, complete: str, jobs: str) -> tuple[JobState, str]:
    """A JobSet's or TrainJob's state: the condition named ``complete``, ``Failed`` or
    ``Suspended``, else running while any of its ``jobs`` counts has active pods."""
    kinds = _true_conditions(obj)
    counts = (obj.get("status") or {}).get(jobs) or []
    if complete in kinds:
        return "succeeded", _said(kinds[complete], "succeeded")
    if "Failed" in kinds:
        return "failed", _said(kinds["Failed"], "failed")
    if "Suspended" in kinds or obj.get("spec", {}).get("suspend"):
        return "pending", _said(kinds.get("Suspended", {}), "suspended (waiting for Kueue)")
    if any(int(j.get("active") or 0) > 0 for j in counts):
        return "running", "jobs active"
    return "pending", "waiting for the controller"


def _owned_by_trainjob(obj: dict[str, Any]) -> bool:
    owners = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(o.get("kind") == TRAINJOB.kind for o in owners)


def _worker_offset(obj: dict[str, Any]) -> int:
    """1 when the job has a Master (node 0) before its Workers, else 0."""
    replica_specs = (obj.get("spec") or {}).get("pytorchReplicaSpecs") or {}
    return 1 if "Master" in replica_specs else 0


def _node_index(pod: Any, worker_offset: int = 0) -> tuple[int, str]:
    """A pod's node number: the JobSet's completion index, or Master 0 then Worker i+1 (Worker i
    in an elastic PyTorchJob, which has no Master)."""
    labels = (pod.metadata.labels or {}) if pod.metadata else {}
    name = pod.metadata.name if pod.metadata else ""
    index = labels.get("batch.kubernetes.io/job-completion-index")
    if index is None:
        annotations = pod.metadata.annotations or {}
        index = annotations.get("batch.kubernetes.io/job-completion-index")
    if index is not None and str(index).isdigit():
        return int(index), name
    kind = labels.get("training.kubeflow.org/replica-type", "")
    replica = labels.get("training.kubeflow.org/replica-index", "")
    if kind and replica.isdigit():
        if kind.lower() == "master":
            return 0, name
        return int(replica) + worker_offset, name
    return 1 << 30, name


def _lines(response: Any) -> Iterator[str]:
    """Text lines of a streamed HTTP response, decoded as UTF-8 as the bytes arrive."""
    pending = b""
    try:
        for chunk in response.stream(4096, decode_content=True):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode("utf-8", "replace")
        if pending:
            yield pending.decode("utf-8", "replace")
    finally:
        response.release_conn()
