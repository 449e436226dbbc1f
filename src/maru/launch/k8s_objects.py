"""The pieces every Kubernetes job kind shares: which custom resources maru emits, labels and
metadata (Kueue's queue label), the checkpoint claim, the container's environment and resources,
the pod template, and the YAML stream. :mod:`maru.launch.k8s_jobs` assembles them into a
TrainJob, a JobSet or a PyTorchJob; :mod:`maru.launch.kubernetes` sends them to the cluster.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from .worker import worker_env

if TYPE_CHECKING:
    from .spec import JobSpec, KubernetesOptions

__all__ = [
    "JOBSET",
    "PYTORCHJOB",
    "QUEUE_LABEL",
    "RESOURCES",
    "TRAINJOB",
    "Resource",
    "checkpoint_claim",
    "checkpoint_dir",
    "checkpoint_pvc",
    "render_yaml",
]

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MANAGED_BY = ("app.kubernetes.io/managed-by", "maru")
JOB_LABEL = "maru.dev/job"
CONTAINER = "pytorch"  # the training operator finds the training container by this name
PORT_NAME = "pytorchjob-port"  # and the rendezvous/master port by this one
COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


@dataclass(frozen=True)
class Resource:
    """A custom resource kind: the API group, version and plural the REST paths use, the label
    its controller puts on every pod of a job, and the training container's name."""

    kind: str
    group: str
    version: str
    plural: str
    pod_label: str
    container: str = CONTAINER

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


TRAINJOB = Resource(
    "TrainJob", "trainer.kubeflow.org", "v1alpha1", "trainjobs", "jobset.sigs.k8s.io/jobset-name",
    container="node",  # the stock runtimes' trainer container
)
PYTORCHJOB = Resource(
    "PyTorchJob", "kubeflow.org", "v1", "pytorchjobs", "training.kubeflow.org/job-name"
)
JOBSET = Resource(
    "JobSet", "jobset.x-k8s.io", "v1alpha2", "jobsets", "jobset.sigs.k8s.io/jobset-name"
)
RESOURCES = {"trainjob": TRAINJOB, "pytorchjob": PYTORCHJOB, "jobset": JOBSET}


def options(spec: JobSpec) -> KubernetesOptions:
    """The spec's ``[kubernetes]`` section, or an error saying how to add one."""
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
    opts = options(spec)
    if opts.checkpoint_claim:
        return opts.checkpoint_claim
    return f"{spec.name}-checkpoints" if opts.checkpoint_storage else None


def checkpoint_dir(spec: JobSpec) -> str | None:
    """Where checkpoints go inside the pods: ``checkpoint_dir`` under the claim's mount when it is
    relative (an absolute one is kept), the mount itself when only a claim is given."""
    opts = options(spec)
    if checkpoint_claim(spec) is None:
        return spec.checkpoint_dir
    if spec.checkpoint_dir is None:
        return opts.checkpoint_mount
    return posixpath.join(opts.checkpoint_mount, spec.checkpoint_dir)


def labels(spec: JobSpec) -> dict[str, str]:
    return {MANAGED_BY[0]: MANAGED_BY[1], JOB_LABEL: spec.name, **options(spec).labels}


def metadata(spec: JobSpec) -> dict[str, Any]:
    """The job object's metadata; with a queue, Kueue's label (Kueue then admits the whole job
    at once and unsuspends it)."""
    found = labels(spec)
    opts = options(spec)
    if opts.queue:
        found[QUEUE_LABEL] = opts.queue
    return {"name": spec.name, "namespace": opts.namespace, "labels": found}


def container_env(spec: JobSpec, extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The node's environment as a container's ``env`` list: maru's (hang watchdog with dumps
    beside the checkpoints, a fresh torchrun store per attempt) under the spec's own."""
    folder = checkpoint_dir(spec)
    hangs = posixpath.join(folder, "hangs") if folder else None
    env = [{"name": k, "value": v} for k, v in worker_env(spec, folder, hangs).items()]
    return env + (extra or [])


def resources(spec: JobSpec) -> dict[str, Any]:
    wanted: dict[str, Any] = {}
    if spec.resources.cpus is not None:
        wanted["cpu"] = f"{spec.resources.cpus:g}"
    if spec.resources.memory is not None:
        wanted["memory"] = spec.resources.memory
    if spec.resources.gpus:
        wanted["nvidia.com/gpu"] = str(spec.resources.gpus)
    return {"requests": dict(wanted), "limits": dict(wanted)} if wanted else {}


def volumes(spec: JobSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(volumes, volumeMounts)``: ``/dev/shm`` in memory (the 64 MiB default starves data
    loader workers) and the checkpoint claim."""
    opts = options(spec)
    found: list[dict[str, Any]] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": opts.shm_size}}
    ]
    mounts: list[dict[str, Any]] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    claim = checkpoint_claim(spec)
    if claim:
        found.append({"name": "checkpoints", "persistentVolumeClaim": {"claimName": claim}})
        mounts.append({"name": "checkpoints", "mountPath": opts.checkpoint_mount})
    return found, mounts


def pod_settings(spec: JobSpec) -> dict[str, Any]:
    """Pod fields beside the containers: the grace period (the spec's ``signal_lead_s``: kubelet
    waits that long after SIGTERM before SIGKILL), service account and node selector."""
    opts = options(spec)
    found: dict[str, Any] = {"terminationGracePeriodSeconds": spec.signal_lead_s}
    if opts.service_account:
        found["serviceAccountName"] = opts.service_account
    if opts.node_selector:
        found["nodeSelector"] = dict(opts.node_selector)
    return found


def pod_template(
    spec: JobSpec, command: list[str], restart_policy: str | None,
    extra_env: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The training pod: one container running ``command``, with volumes and settings."""
    opts = options(spec)
    pod_volumes, mounts = volumes(spec)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": opts.image,
        "command": command,
        "env": container_env(spec, extra_env),
        "ports": [{"name": PORT_NAME, "containerPort": spec.rdzv_port, "protocol": "TCP"}],
        "volumeMounts": mounts,
    }
    if opts.image_pull_policy:
        container["imagePullPolicy"] = opts.image_pull_policy
    if spec.workdir:
        container["workingDir"] = spec.workdir
    if resources(spec):
        container["resources"] = resources(spec)
    pod: dict[str, Any] = {"containers": [container], "volumes": pod_volumes, **pod_settings(spec)}
    if restart_policy:
        pod["restartPolicy"] = restart_policy
    return {"metadata": {"labels": labels(spec)}, "spec": pod}


def check_length(name: str, longest: str) -> None:
    if len(longest) > 63:
        raise ConfigurationError(
            f"job name {name!r} is too long for Kubernetes: its pods' names ({longest!r}) must be "
            f"at most 63 characters; shorten the name by {len(longest) - 63}"
        )


def checkpoint_pvc(spec: JobSpec) -> dict[str, Any] | None:
    """A ReadWriteMany claim of ``checkpoint_storage`` (every node writes its shards), or ``None``
    when the spec names an existing claim or none."""
    opts = options(spec)
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
        "metadata": {"name": claim, "namespace": opts.namespace, "labels": labels(spec)},
        "spec": pvc_spec,
    }


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
