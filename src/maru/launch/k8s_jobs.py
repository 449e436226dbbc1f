"""A job spec as Kubernetes objects, one function per kind (``[kubernetes].kind``):

``trainjob`` (the default): a Kubeflow Trainer v2 ``TrainJob`` (trainer.kubeflow.org/v1alpha1)
    on the ClusterTrainingRuntime ``runtime`` (default the stock ``torch-distributed``). maru's
    volumes, grace period and pod settings go in as a ``runtimePatches`` entry. The runtime's
    torch plugin puts node 0's address in ``PET_MASTER_ADDR``; torchrun runs c10d rendezvous
    there, so losing node 0 ends the attempt: the pods are retried and resume from the checkpoint
    (Trainer v2 offers no separate rendezvous host; choose ``jobset`` for one).
``jobset``: a bare JobSet with a one-pod ``rdzv`` job hosting the c10d store
    (:mod:`maru.launch.rendezvous`) on a stable name, ``<name>-rdzv-0-0.<name>``, and the
    ``trainer`` job whose agents join it as clients: losing any training pod, node 0 included,
    loses no rendezvous; the Job recreates that pod and the other agents wait for it (fixed size)
    or go on without it (``MIN:MAX``). An exit code of 1 or 124 (a deterministic error, see
    :mod:`maru.launch.worker`) fails the JobSet at once instead of restarting it.
``pytorchjob``: the legacy Training Operator v1 ``PyTorchJob`` (kubeflow.org/v1), with
    rendezvous on ``<name>-master-0`` (``-worker-0`` when elastic) and ``restartPolicy:
    ExitCode`` (exit codes of 128 and up, preemption and kills, are retried; the rest fail).

Under Kueue (``queue``) every kind is admitted whole: quota for ``MAX`` nodes of a ``MIN:MAX`` job
is reserved and all its pods start together, so an elastic job does not start small. ``MIN``
only says how many nodes torchrun needs to keep going after one is lost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .k8s_objects import (
    COMPLETION_INDEX,
    CONTAINER,
    JOBSET,
    PYTORCHJOB,
    TRAINJOB,
    Resource,
    check_length,
    checkpoint_pvc,
    container_env,
    labels,
    metadata,
    options,
    pod_settings,
    pod_template,
    resources,
    volumes,
)
from .rendezvous import RDZV_MODULE
from .worker import KILLED, PREEMPTED, node_command

if TYPE_CHECKING:
    from .spec import JobSpec

__all__ = ["jobset", "manifests", "pytorchjob", "trainjob"]

TRAINER = "trainer"  # the JobSet's training job
RDZV = "rdzv"  # the JobSet's rendezvous job
RUNTIME_NODE = "node"  # the stock runtimes' training job and container
PATCH_MANAGER = "maru.dev/launch"


def _command(spec: JobSpec, endpoint: str, **options: Any) -> list[str]:
    """The node command with rendezvous at ``endpoint`` and SIGTERM's lead from the spec."""
    return node_command(spec, lead_s=spec.signal_lead_s, rdzv_endpoint=endpoint, **options)


def _job_object(resource: Resource, spec: JobSpec, job_spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "metadata": metadata(spec),
        "spec": job_spec,
    }


# ------------------------------------------------------------------------------------ TrainJob
def trainjob(spec: JobSpec) -> dict[str, Any]:
    """The Trainer v2 TrainJob on the ClusterTrainingRuntime ``[kubernetes].runtime``."""
    opts = options(spec)
    if opts.image_pull_policy:
        raise ConfigurationError(
            "image_pull_policy cannot be set on a TrainJob (the runtime decides it): drop it, "
            'or use kind = "jobset"'
        )
    check_length(spec.name, f"{spec.name}-{RUNTIME_NODE}-0-{spec.max_nodes - 1}")
    command = _command(spec, "$(PET_MASTER_ADDR):$(PET_MASTER_PORT)")
    if spec.workdir:  # a TrainJob's container has no workingDir to set
        command = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', spec.workdir, *command]
    trainer: dict[str, Any] = {
        "image": opts.image,
        "command": command,
        "env": container_env(spec),
        "numNodes": spec.max_nodes,
    }
    if isinstance(spec.nproc_per_node, int):
        trainer["numProcPerNode"] = spec.nproc_per_node
    if resources(spec):
        trainer["resourcesPerNode"] = resources(spec)
    job_spec: dict[str, Any] = {
        "runtimeRef": {
            "apiGroup": TRAINJOB.group, "kind": "ClusterTrainingRuntime", "name": opts.runtime,
        },
        "trainer": trainer,
        "runtimePatches": [{"manager": PATCH_MANAGER, "trainingRuntimeSpec": _runtime_patch(spec)}],
    }
    if opts.queue:
        job_spec["suspend"] = True
    return _job_object(TRAINJOB, spec, job_spec)


def _runtime_patch(spec: JobSpec) -> dict[str, Any]:
    """maru's pod settings for the runtime's training job: labels, volumes, grace period."""
    pod_volumes, mounts = volumes(spec)
    pod = {
        "containers": [{"name": RUNTIME_NODE, "volumeMounts": mounts}],
        "volumes": pod_volumes,
        **pod_settings(spec),
    }
    job = {"template": {"metadata": {"labels": labels(spec)}, "spec": pod}}
    return {"template": {"spec": {"replicatedJobs": [{"name": RUNTIME_NODE, "template": {
        "spec": job}}]}}}


# -------------------------------------------------------------------------------------- JobSet
def jobset(spec: JobSpec) -> dict[str, Any]:
    """The JobSet: ``rdzv`` (one pod hosting the rendezvous store) then ``trainer`` (an Indexed
    Job of one pod per node, started once the store is ready). The JobSet succeeds when the
    trainer does; a deterministic failure fails it, anything else restarts it up to
    ``max_restarts`` times."""
    host = f"{spec.name}-{RDZV}-0-0"
    check_length(spec.name, f"{spec.name}-{TRAINER}-0-{spec.max_nodes - 1}")
    command = _command(
        spec, f"{host}.{spec.name}:{spec.rdzv_port}", node_rank="$(MARU_NODE_RANK)",
        extra=("--rdzv-conf", "is_host=false"),
    )
    node_rank = {"name": "MARU_NODE_RANK", "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX}}}
    trainer_job = {
        "name": TRAINER,
        "replicas": 1,
        "dependsOn": [{"name": RDZV, "status": "Ready"}],
        "template": {
            "metadata": {"labels": labels(spec)},
            "spec": {
                "parallelism": spec.max_nodes,
                "completions": spec.max_nodes,
                "completionMode": "Indexed",
                "backoffLimit": spec.max_restarts,
                "podFailurePolicy": _pod_failure_policy(),
                "template": pod_template(spec, command, "Never", [node_rank]),
            },
        },
    }
    job_spec: dict[str, Any] = {
        "failurePolicy": {
            "maxRestarts": spec.max_restarts,
            "rules": [{"name": "deterministic-error", "action": "FailJobSet",
                       "onJobFailureReasons": ["PodFailurePolicy"]}],
        },
        "successPolicy": {"operator": "All", "targetReplicatedJobs": [TRAINER]},
        "network": {"enableDNSHostnames": True},
        "replicatedJobs": [_rendezvous_job(spec), trainer_job],
    }
    if options(spec).queue:
        job_spec["suspend"] = True
    return _job_object(JOBSET, spec, job_spec)


def _pod_failure_policy() -> dict[str, Any]:
    """Exit codes other than preemption's and a kill's fail the Job at once (a rerun fails the
    same way); pods disrupted by preemption, eviction or a drained node do not count at all."""
    return {"rules": [
        {"action": "FailJob", "onExitCodes": {
            "containerName": CONTAINER, "operator": "NotIn", "values": [KILLED, PREEMPTED]}},
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
    ]}


def _rendezvous_job(spec: JobSpec) -> dict[str, Any]:
    opts = options(spec)
    container: dict[str, Any] = {
        "name": RDZV,
        "image": opts.image,
        "command": ["python", "-m", RDZV_MODULE, str(spec.rdzv_port)],
        "ports": [{"name": "rdzv", "containerPort": spec.rdzv_port, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}},
        "readinessProbe": {"tcpSocket": {"port": spec.rdzv_port}, "periodSeconds": 2},
    }
    if opts.image_pull_policy:
        container["imagePullPolicy"] = opts.image_pull_policy
    pod: dict[str, Any] = {"containers": [container], "restartPolicy": "OnFailure"}
    for key in ("serviceAccountName", "nodeSelector"):
        if key in pod_settings(spec):
            pod[key] = pod_settings(spec)[key]
    return {
        "name": RDZV,
        "replicas": 1,
        "template": {
            "metadata": {"labels": labels(spec)},
            "spec": {
                "parallelism": 1,
                "completions": 1,
                "backoffLimit": spec.max_restarts,
                "template": {"metadata": {"labels": labels(spec)}, "spec": pod},
            },
        },
    }


# ---------------------------------------------------------------------------------- PyTorchJob
def pytorchjob(spec: JobSpec) -> dict[str, Any]:
    """The legacy PyTorchJob: Master + Workers for a fixed node count, Workers under an
    ``elasticPolicy`` for ``MIN:MAX``. Pods are restarted on exit codes of 128 and up
    (``ExitCode``), up to ``max_restarts`` times (``runPolicy.backoffLimit``)."""
    opts = options(spec)
    first = f"{spec.name}-master-0" if not spec.elastic else f"{spec.name}-worker-0"
    check_length(spec.name, f"{spec.name}-worker-{spec.max_nodes - 1}")
    template = pod_template(spec, _command(spec, f"{first}:{spec.rdzv_port}"), None)

    def replicas(count: int) -> dict[str, Any]:
        return {"replicas": count, "restartPolicy": "ExitCode", "template": template}

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
    return _job_object(PYTORCHJOB, spec, job_spec)


RENDERERS = {"trainjob": trainjob, "jobset": jobset, "pytorchjob": pytorchjob}


def manifests(spec: JobSpec) -> list[dict[str, Any]]:
    """Every object to create, in order: the checkpoint claim (if a new one), then the job."""
    job = RENDERERS[options(spec).kind](spec)
    pvc = checkpoint_pvc(spec)
    return [pvc, job] if pvc else [job]
