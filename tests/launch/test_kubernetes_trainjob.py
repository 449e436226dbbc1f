"""Kubernetes manifests of every kind — Kubeflow Trainer v2 TrainJob (the default), JobSet with a
rendezvous pod, legacy PyTorchJob — validated against the CRDs in ``k8s-crds`` with strict
unknown-field checks (as ``kubectl apply --validate=strict`` would), plus what each kind promises
about preemption, exit codes, Kueue and losing node 0."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import SHARED_DATA
from maru.errors import ConfigurationError
from maru.launch.kubernetes import manifests

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
import crd_strict  # noqa: E402

jsonschema = pytest.importorskip("jsonschema")
yaml = pytest.importorskip("yaml")

CRD_DIR = Path(os.environ.get("MARU_K8S_CRDS", SHARED_DATA / "k8s-crds"))
KINDS = ("trainjob", "jobset", "pytorchjob")


@pytest.fixture(scope="module")
def schemas() -> dict[tuple[str, str], Any]:
    if not CRD_DIR.is_dir():
        pytest.skip(f"CRD schemas not found at {CRD_DIR}")
    found = crd_strict.load_schemas(CRD_DIR)
    assert ("trainer.kubeflow.org/v1alpha1", "TrainJob") in found
    return found


spec_of = crd_strict.k8s_spec


VARIANTS: dict[str, dict[str, Any]] = {
    "fixed": {},
    "single-node": {"nnodes": 1},
    "elastic": {"nnodes": "1:3", "nproc_per_node": 2},
    "queue-claim-gpu": {
        "resources": {"cpus": 8, "memory": "32Gi", "gpus": 4},
        "nproc_per_node": "gpu",
        "checkpoint_dir": "run1",
        "signal_lead_s": 300,
        "env": {"A": "1"},
        "workdir": "/app",
        "kubernetes": {"queue": "team-a", "checkpoint_storage": "10Gi", "storage_class": "nfs",
                       "service_account": "trainer", "node_selector": {"gpu": "h100"},
                       "labels": {"team": "ml"}},
    },
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_validates_strictly(
    schemas: dict[tuple[str, str], Any], kind: str, variant: str
) -> None:
    for obj in manifests(spec_of(kind, **copy.deepcopy(VARIANTS[variant]))):
        if obj["kind"] != "PersistentVolumeClaim":
            crd_strict.validate(schemas, obj)


def test_strict_validation_catches_a_misspelt_field(schemas: dict[tuple[str, str], Any]) -> None:
    """What plain JSON-Schema validation lets through (the old check) and the API server's strict
    field validation refuses."""
    job = manifests(spec_of())[-1]
    job["spec"]["trainer"]["numNode"] = 2
    with pytest.raises(jsonschema.ValidationError, match="numNode"):
        crd_strict.validate(schemas, job)
    job = manifests(spec_of())[-1]
    job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"][
        "replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    with pytest.raises(jsonschema.ValidationError, match="restartPolicy"):
        crd_strict.validate(schemas, job)  # not a field a runtime patch may set
    job = manifests(spec_of("jobset"))[-1]
    job["spec"]["replicatedJobs"][1]["template"]["spec"]["template"]["spec"]["containers"][0][
        "workdir"] = "/x"
    with pytest.raises(jsonschema.ValidationError, match="workdir"):
        crd_strict.validate(schemas, job)
    job = manifests(spec_of("pytorchjob"))[-1]
    job["metadata"]["label"] = {}
    with pytest.raises(jsonschema.ValidationError, match="label"):
        crd_strict.validate(schemas, job)


def test_the_stock_runtime_validates_and_names_what_a_trainjob_patches(
    schemas: dict[tuple[str, str], Any]
) -> None:
    runtime = yaml.safe_load((CRD_DIR / "runtimes" / "torch_distributed.yaml").read_text())
    crd_strict.validate(schemas, runtime)
    (node,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    (container,) = node["template"]["spec"]["template"]["spec"]["containers"]
    job = manifests(spec_of())[-1]
    assert job["spec"]["runtimeRef"] == {"apiGroup": "trainer.kubeflow.org",
                                         "kind": "ClusterTrainingRuntime",
                                         "name": runtime["metadata"]["name"]}
    (patch,) = job["spec"]["runtimePatches"]
    (patched,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert patched["name"] == node["name"]
    pod = patched["template"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["name"] == container["name"]


def test_trainjob_is_the_default_and_carries_kueue_and_the_grace_period() -> None:
    spec = spec_of(**copy.deepcopy(VARIANTS["queue-claim-gpu"]))
    pvc, job = manifests(spec)
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["metadata"]["name"] == "fmnist-checkpoints"
    assert (job["apiVersion"], job["kind"]) == ("trainer.kubeflow.org/v1alpha1", "TrainJob")
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert job["spec"]["suspend"] is True  # Kueue admits the whole job, then unsuspends it
    trainer = job["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and "numProcPerNode" not in trainer  # "gpu": torchrun decides
    assert trainer["resourcesPerNode"]["limits"]["nvidia.com/gpu"] == "4"
    command = trainer["command"]
    assert command[:4] == ["/bin/sh", "-c", 'cd "$0" && exec "$@"', "/app"]
    assert command[4:7] == ["python", "-m", "maru.launch.node"]
    assert command[command.index("--rdzv-endpoint") + 1] == "$(PET_MASTER_ADDR):$(PET_MASTER_PORT)"
    assert command[command.index("--rdzv-backend") + 1] == "c10d"
    assert command[command.index("--shutdown-timeout") + 1] == "290"  # inside the 300 s lead
    env = {e["name"]: e["value"] for e in trainer["env"]}
    assert env["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] == "1"
    assert env["MARU_CHECKPOINT_DIR"] == "/checkpoints/run1"
    assert env["MARU_HANG_DUMP_DIR"] == "/checkpoints/run1/hangs" and env["MARU_HANG_TIMEOUT_S"] == "600"
    assert env["A"] == "1"
    pod = job["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"][
        "replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 300
    assert pod["serviceAccountName"] == "trainer" and pod["nodeSelector"] == {"gpu": "h100"}
    assert {v["name"] for v in pod["volumes"]} == {"dshm", "checkpoints"}


def test_trainjob_refuses_what_it_cannot_express() -> None:
    with pytest.raises(ConfigurationError, match="image_pull_policy cannot be set on a TrainJob"):
        manifests(spec_of(kubernetes={"image_pull_policy": "Always"}))
    long = "x" * 56
    with pytest.raises(ConfigurationError, match="too long"):
        manifests(spec_of(name=long))


def test_jobset_rendezvous_outlives_node_zero() -> None:
    """The store lives in the rdzv pod; the trainer's agents only join it, so losing any
    training pod (node 0 too) leaves the rendezvous up."""
    job = manifests(spec_of("jobset", nnodes="2:4"))[-1]
    rdzv, trainer = job["spec"]["replicatedJobs"]
    rdzv_pod = rdzv["template"]["spec"]["template"]["spec"]
    assert rdzv_pod["containers"][0]["command"] == ["python", "-m", "maru.launch.rendezvous", "29500"]
    command = trainer["template"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--rdzv-endpoint") + 1] == "fmnist-rdzv-0-0.fmnist:29500"
    assert command[command.index("--rdzv-conf") + 1] == "is_host=false"
    assert command[command.index("--nnodes") + 1] == "2:4"
    assert job["spec"]["successPolicy"] == {"operator": "All", "targetReplicatedJobs": ["trainer"]}
    policy = trainer["template"]["spec"]["podFailurePolicy"]["rules"]
    assert policy[0]["action"] == "FailJob" and policy[0]["onExitCodes"]["values"] == [137, 143]
    assert job["spec"]["failurePolicy"]["rules"][0]["action"] == "FailJobSet"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_wraps_torchrun_and_the_workers(kind: str) -> None:
    """Same exit codes, watchdog, error files and store flag whatever the kind."""
    job = manifests(spec_of(kind, signal_lead_s=60))[-1]
    text = yaml.safe_dump(job)
    assert "maru.launch.node" in text and "maru.launch.entry" in text
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE" in text and "MARU_HANG_TIMEOUT_S" in text
    assert "terminationGracePeriodSeconds: 60" in text and "- '50'" in text  # 60 s lead, 50 s
