"""Kubernetes: a job spec becomes a Kubeflow ``PyTorchJob`` (kubeflow.org/v1) or a ``JobSet``
(jobset.x-k8s.io/v1alpha2), plus a PersistentVolumeClaim for checkpoints when the spec asks for a
new one. With ``queue`` set the job carries Kueue's ``kueue.x-k8s.io/queue-name`` label and is
created suspended: Kueue admits all its pods at once (gang admission) and unsuspends it.

Every pod runs torchrun with c10d rendezvous on the first pod (``<name>-master-0`` or
``<name>-worker-0`` for a PyTorchJob, ``<name>-trainer-0-0.<name>`` for a JobSet), ``/dev/shm``
as a memory-backed volume (the 64 MiB default starves data loader workers) and the checkpoint
claim mounted at ``checkpoint_mount``.

Requests go through the official ``kubernetes`` client (``pip install "maru[launch]"``), set up
from kubeconfig or the in-cluster service account, or from an explicit ``api_client``.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .backend import Backend, JobHandle, JobState, JobStatus, LaunchError

if TYPE_CHECKING:
    from .spec import JobSpec, KubernetesOptions

__all__ = [
    "JOBSET",
    "PYTORCHJOB",
    "QUEUE_LABEL",
    "KubernetesBackend",
    "jobset",
    "manifests",
    "pytorchjob",
    "render_yaml",
]

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MANAGED_BY = ("app.kubernetes.io/managed-by", "maru")
JOB_LABEL = "maru.dev/job"
CONTAINER = "pytorch"  # the training operator finds the training container by this name
PORT_NAME = "pytorchjob-port"  # and the rendezvous/master port by this one
TRAINER = "trainer"  # the JobSet's replicated job
COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


@dataclass(frozen=True)
class Resource:
    """A custom resource kind: the API group, version and plural the REST paths use."""

    kind: str
    group: str
    version: str
    plural: str
    pod_label: str  # the label its controller puts on every pod of a job

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


PYTORCHJOB = Resource(
    "PyTorchJob", "kubeflow.org", "v1", "pytorchjobs", "training.kubeflow.org/job-name"
)
JOBSET = Resource(
    "JobSet", "jobset.x-k8s.io", "v1alpha2", "jobsets", "jobset.sigs.k8s.io/jobset-name"
)
RESOURCES = {"pytorchjob": PYTORCHJOB, "jobset": JOBSET}


# ------------------------------------------------------------------------------------ rendering
def _options(spec: JobSpec) -> KubernetesOptions:
    if spec.kubernetes is None:
        where = f" {spec.source}" if spec.source else ""
        raise ConfigurationError(
            f"job spec{where} has no [kubernetes] section: add one with at least "
            "image = \"<registry>/<image>:<tag>\" to run on Kubernetes"
        )
    return spec.kubernetes


def checkpoint_claim(spec: JobSpec) -> str | None:
    """The PVC the pods mount for checkpoints: the one named, or ``<name>-checkpoints`` when only
    a size for a new claim is given; ``None`` for neither."""
    opts = _options(spec)
    if opts.checkpoint_claim:
        return opts.checkpoint_claim
    return f"{spec.name}-checkpoints" if opts.checkpoint_storage else None


def checkpoint_dir(spec: JobSpec) -> str | None:
    """Where checkpoints go inside the pods: ``checkpoint_dir`` under the claim's mount when it is
    relative (an absolute one is kept), the mount itself when only a claim is given."""
    opts = _options(spec)
    if checkpoint_claim(spec) is None:
        return spec.checkpoint_dir
    if spec.checkpoint_dir is None:
        return opts.checkpoint_mount
    return posixpath.join(opts.checkpoint_mount, spec.checkpoint_dir)


def _labels(spec: JobSpec) -> dict[str, str]:
    labels = {MANAGED_BY[0]: MANAGED_BY[1], JOB_LABEL: spec.name, **_options(spec).labels}
    return labels


def _metadata(spec: JobSpec, queued: bool) -> dict[str, Any]:
    labels = _labels(spec)
    opts = _options(spec)
    if queued and opts.queue:
        labels[QUEUE_LABEL] = opts.queue
    return {"name": spec.name, "namespace": opts.namespace, "labels": labels}


def _env(spec: JobSpec, extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in spec.env.items()]
    maru = {"MARU_JOB_NAME": spec.name, "PYTHONUNBUFFERED": "1"}
    folder = checkpoint_dir(spec)
    if folder:
        maru["MARU_CHECKPOINT_DIR"] = folder
    env += [{"name": k, "value": v} for k, v in maru.items() if k not in spec.env]
    return env + extra


def _resources(spec: JobSpec) -> dict[str, Any]:
    wanted: dict[str, Any] = {}
    if spec.resources.cpus is not None:
        wanted["cpu"] = f"{spec.resources.cpus:g}"
    if spec.resources.memory is not None:
        wanted["memory"] = spec.resources.memory
    if spec.resources.gpus:
        wanted["nvidia.com/gpu"] = str(spec.resources.gpus)
    return {"requests": dict(wanted), "limits": dict(wanted)} if wanted else {}


def _pod_template(
    spec: JobSpec, command: list[str], restart_policy: str | None, extra_env: list[dict[str, Any]]
) -> dict[str, Any]:
    opts = _options(spec)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": opts.image,
        "command": command,
        "env": _env(spec, extra_env),
        "ports": [{"name": PORT_NAME, "containerPort": spec.rdzv_port, "protocol": "TCP"}],
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if opts.image_pull_policy:
        container["imagePullPolicy"] = opts.image_pull_policy
    if spec.workdir:
        container["workingDir"] = spec.workdir
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    volumes: list[dict[str, Any]] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": opts.shm_size}}
    ]
    claim = checkpoint_claim(spec)
    if claim:
        container["volumeMounts"].append({"name": "checkpoints", "mountPath": opts.checkpoint_mount})
        volumes.append({"name": "checkpoints", "persistentVolumeClaim": {"claimName": claim}})
    pod: dict[str, Any] = {"containers": [container], "volumes": volumes}
    if restart_policy:
        pod["restartPolicy"] = restart_policy
    if opts.service_account:
        pod["serviceAccountName"] = opts.service_account
    if opts.node_selector:
        pod["nodeSelector"] = dict(opts.node_selector)
    return {"metadata": {"labels": _labels(spec)}, "spec": pod}


def _check_length(name: str, longest: str) -> None:
    if len(longest) > 63:
        raise ConfigurationError(
            f"job name {name!r} is too long for Kubernetes: its pods' names ({longest!r}) must be "
            f"at most 63 characters; shorten the name by {len(longest) - 63}"
        )


def pytorchjob(spec: JobSpec) -> dict[str, Any]:
    """The Kubeflow PyTorchJob: Master + Workers for a fixed node count, Workers under an
    ``elasticPolicy`` for ``MIN:MAX``. The training operator restarts failed pods
    (``OnFailure``) up to ``max_restarts`` times (``runPolicy.backoffLimit``)."""
    opts = _options(spec)
    first = f"{spec.name}-master-0" if not spec.elastic else f"{spec.name}-worker-0"
    _check_length(spec.name, f"{spec.name}-worker-{spec.max_nodes - 1}")
    command = spec.torchrun_command(rdzv_endpoint=f"{first}:{spec.rdzv_port}")
    template = _pod_template(spec, command, None, [])

    def replicas(count: int) -> dict[str, Any]:
        return {"replicas": count, "restartPolicy": "OnFailure", "template": template}

    job_spec: dict[str, Any] = {
        "nprocPerNode": str(spec.nproc_per_node),
        "runPolicy": {"backoffLimit": spec.max_restarts, "cleanPodPolicy": "None"},
    }
    if opts.queue:
        job_spec["runPolicy"]["suspend"] = True
    if spec.elastic:
        policy: dict[str, Any] = {
            "minReplicas": spec.min_nodes,
            "maxReplicas": spec.max_nodes,
            "rdzvBackend": "c10d",
            "rdzvPort": spec.rdzv_port,
            "rdzvId": spec.name,
            "maxRestarts": spec.max_restarts,
        }
        if isinstance(spec.nproc_per_node, int):
            policy["nProcPerNode"] = spec.nproc_per_node  # deprecated, older operators read it
        job_spec["elasticPolicy"] = policy
        job_spec["pytorchReplicaSpecs"] = {"Worker": replicas(spec.max_nodes)}
    else:
        specs = {"Master": replicas(1)}
        if spec.max_nodes > 1:
            specs["Worker"] = replicas(spec.max_nodes - 1)
        job_spec["pytorchReplicaSpecs"] = specs
    return {
        "apiVersion": PYTORCHJOB.api_version,
        "kind": PYTORCHJOB.kind,
        "metadata": _metadata(spec, queued=True),
        "spec": job_spec,
    }


def jobset(spec: JobSpec) -> dict[str, Any]:
    """The JobSet: one replicated job ``trainer`` whose Indexed batch Job runs one pod per node.
    Pods fail fast (``backoffLimit: 0``); the JobSet recreates them all, up to ``max_restarts``
    times (``failurePolicy.maxRestarts``), and torchrun resumes from the last checkpoint."""
    opts = _options(spec)
    host = f"{spec.name}-{TRAINER}-0-0"
    _check_length(spec.name, host)
    command = spec.torchrun_command(
        node_rank="$(MARU_NODE_RANK)", rdzv_endpoint=f"{host}.{spec.name}:{spec.rdzv_port}"
    )
    node_rank = {"name": "MARU_NODE_RANK", "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX}}}
    template = _pod_template(spec, command, "Never", [node_rank])
    job_spec: dict[str, Any] = {
        "failurePolicy": {"maxRestarts": spec.max_restarts},
        "network": {"enableDNSHostnames": True},
        "replicatedJobs": [
            {
                "name": TRAINER,
                "replicas": 1,
                "template": {
                    "metadata": {"labels": _labels(spec)},
                    "spec": {
                        "parallelism": spec.max_nodes,
                        "completions": spec.max_nodes,
                        "completionMode": "Indexed",
                        "backoffLimit": 0,
                        "template": template,
                    },
                },
            }
        ],
    }
    if opts.queue:
        job_spec["suspend"] = True
    return {
        "apiVersion": JOBSET.api_version,
        "kind": JOBSET.kind,
        "metadata": _metadata(spec, queued=True),
        "spec": job_spec,
    }


def checkpoint_pvc(spec: JobSpec) -> dict[str, Any] | None:
    """A ReadWriteMany claim of ``checkpoint_storage`` (every node writes its shards), or ``None``
    when the spec names an existing claim or none."""
    opts = _options(spec)
    claim = checkpoint_claim(spec)
    if claim is None or opts.checkpoint_storage is None:
        return None
    pvc_spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": opts.checkpoint_storage}},
    }
    if opts.storage_class:
        pvc_spec["storageClassName"] = opts.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim, "namespace": opts.namespace, "labels": _labels(spec)},
        "spec": pvc_spec,
    }


def manifests(spec: JobSpec) -> list[dict[str, Any]]:
    """Every object to create, in order: the checkpoint claim (if a new one), then the job."""
    job = jobset(spec) if _options(spec).kind == "jobset" else pytorchjob(spec)
    pvc = checkpoint_pvc(spec)
    return [pvc, job] if pvc else [job]


def render_yaml(objects: list[dict[str, Any]]) -> str:
    """Objects as a multi-document YAML stream (JSON documents, also YAML, without PyYAML).

    Plain YAML: a dict that appears twice (the pod template master and workers share) is written
    out twice, not as an ``&id001`` anchor and ``*id001`` alias."""
    try:
        import yaml
    except ImportError:
        return "---\n".join(json.dumps(obj, indent=2) + "\n" for obj in objects)

    class PlainDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump_all(objects, Dumper=PlainDumper, sort_keys=False, default_flow_style=False)


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

        candidates = [ref.resource] if ref.resource else [PYTORCHJOB, JOBSET]
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
        resource = JOBSET if job["kind"] == JOBSET.kind else PYTORCHJOB
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
        if _options(spec).queue:
            extra["queue"] = str(_options(spec).queue)
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
        status = obj.get("status") or {}
        conditions = [c for c in status.get("conditions") or [] if c.get("status") == "True"]
        state: JobState = "pending"
        detail = "waiting for the controller"
        restarts = 0
        if resource is PYTORCHJOB:
            if obj.get("spec", {}).get("runPolicy", {}).get("suspend"):
                state, detail = "pending", "suspended (waiting for Kueue admission)"
            if conditions:
                last = conditions[-1]
                state = _STATE_OF_PYTORCHJOB.get(last.get("type", ""), "unknown")
                detail = last.get("message") or last.get("reason") or last.get("type", "")
            restarts = self._pod_restarts(resource, ref) if count_restarts else 0
        else:
            restarts = int(status.get("restarts") or 0)
            kinds = {c.get("type"): c for c in conditions}
            replicated = status.get("replicatedJobsStatus") or []
            if "Completed" in kinds:
                state, condition = "succeeded", kinds["Completed"]
            elif "Failed" in kinds:
                state, condition = "failed", kinds["Failed"]
            elif "Suspended" in kinds or obj.get("spec", {}).get("suspend"):
                state = "pending"
                condition = kinds.get("Suspended", {"message": "suspended (waiting for Kueue)"})
            elif any(int(r.get("active") or 0) > 0 for r in replicated):
                state, condition = "running", {"message": "jobs active"}
            else:
                condition = {"message": detail}
            detail = condition.get("message") or condition.get("reason") or state
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
                    name, ref.namespace, container=CONTAINER, follow=follow, _preload_content=False
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
        for resource in (PYTORCHJOB, JOBSET):
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
                ref = _JobRef(self.namespace, resource, obj["metadata"]["name"])
                found.append(self._status_of(resource, obj, ref, count_restarts=False))
        return found


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
