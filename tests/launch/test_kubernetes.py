"""Kubernetes: every rendered PyTorchJob and JobSet validates against the real CRD schemas
(/work/shared/data/k8s-crds), and submit/status/logs/cancel send the right requests, checked
against a loopback HTTP server that records them."""

from __future__ import annotations

import copy
import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import SHARED_DATA
from maru.errors import ConfigurationError
from maru.launch import JobRegistry, get_backend, load_spec, parse_spec
from maru.launch.backend import LaunchError
from maru.launch.kubernetes import KubernetesBackend, manifests, render_yaml

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
import crd_strict  # noqa: E402

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("kubernetes")

CRD_DIR = Path(os.environ.get("MARU_K8S_CRDS", SHARED_DATA / "k8s-crds"))
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "launch"


# ------------------------------------------------------------------------------- CRD schemas
@pytest.fixture(scope="module")
def schemas() -> dict[tuple[str, str], Any]:
    """(apiVersion, kind) -> the CRD's schema, strict about unknown fields (crd_strict)."""
    if not CRD_DIR.is_dir():
        pytest.skip(f"CRD schemas not found at {CRD_DIR}")
    found = crd_strict.load_schemas(CRD_DIR)
    assert ("kubeflow.org/v1", "PyTorchJob") in found
    assert ("jobset.x-k8s.io/v1alpha2", "JobSet") in found
    return found


validate = crd_strict.validate


def spec_of(**overrides: Any) -> Any:
    """The legacy kinds: TrainJob (the default) has its own tests in test_kubernetes_trainjob.py."""
    return crd_strict.k8s_spec("pytorchjob", **overrides)


VARIANTS = {
    "pytorchjob-fixed": {},
    "pytorchjob-single-node": {"nnodes": 1},
    "pytorchjob-elastic": {"nnodes": "1:4", "nproc_per_node": 2},
    "pytorchjob-queue-claim-gpu": {
        "resources": {"cpus": 8, "memory": "32Gi", "gpus": 4},
        "nproc_per_node": "gpu",
        "checkpoint_dir": "run1",
        "kubernetes": {"queue": "team-a", "checkpoint_storage": "10Gi", "storage_class": "nfs"},
    },
    "pytorchjob-elastic-queue": {"nnodes": "2:3", "kubernetes": {"queue": "q"}},
    "jobset-fixed": {"kubernetes": {"kind": "jobset"}},
    "jobset-elastic": {"nnodes": "1:3", "kubernetes": {"kind": "jobset"}},
    "jobset-queue-claim-gpu": {
        "resources": {"cpus": 0.5, "memory": "1Gi", "gpus": 1},
        "env": {"A": "1"},
        "workdir": "/app",
        "kubernetes": {
            "kind": "jobset",
            "queue": "team-b",
            "checkpoint_claim": "shared",
            "service_account": "trainer",
            "node_selector": {"gpu": "a100"},
            "image_pull_policy": "IfNotPresent",
            "labels": {"team": "ml"},
        },
    },
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_rendered_object_validates_against_its_crd(
    schemas: dict[tuple[str, str], Any], variant: str
) -> None:
    spec = spec_of(**copy.deepcopy(VARIANTS[variant]))
    objects = manifests(spec)
    job = objects[-1]
    validate(schemas, job)
    assert job["kind"] == ("JobSet" if "jobset" in variant else "PyTorchJob")
    # the YAML stream holds the same objects
    assert list(yaml.safe_load_all(render_yaml(objects))) == objects


def test_validator_rejects_a_broken_object(schemas: dict[tuple[str, str], Any]) -> None:
    job = manifests(spec_of())[-1]
    broken = copy.deepcopy(job)
    broken["spec"]["pytorchReplicaSpecs"]["Master"]["replicas"] = "one"
    with pytest.raises(jsonschema.ValidationError):
        validate(schemas, broken)
    broken = copy.deepcopy(job)
    broken["spec"]["nprocPerNode"] = 2  # the v1 schema wants a string
    with pytest.raises(jsonschema.ValidationError):
        validate(schemas, broken)
    broken = copy.deepcopy(job)
    del broken["spec"]["pytorchReplicaSpecs"]  # required
    with pytest.raises(jsonschema.ValidationError):
        validate(schemas, broken)
    jobset = manifests(spec_of(kubernetes={"kind": "jobset"}))[-1]
    jobset["spec"]["replicatedJobs"][0].pop("name")  # required
    with pytest.raises(jsonschema.ValidationError):
        validate(schemas, jobset)


def container_of(pod_template: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_template["spec"]["containers"]
    assert container["name"] == "pytorch"
    return container


def test_pytorchjob_fixed_size() -> None:
    job = manifests(spec_of(nnodes=3, max_restarts=4))[-1]
    assert job["apiVersion"] == "kubeflow.org/v1" and job["metadata"]["name"] == "fmnist"
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1 and replicas["Worker"]["replicas"] == 2
    assert replicas["Master"]["restartPolicy"] == "ExitCode"  # 128+ (preempted, killed) retried
    assert "elasticPolicy" not in job["spec"]
    assert job["spec"]["nprocPerNode"] == "1"
    assert job["spec"]["runPolicy"] == {"backoffLimit": 4, "cleanPodPolicy": "None"}
    assert "kueue.x-k8s.io/queue-name" not in job["metadata"]["labels"]
    command = container_of(replicas["Worker"]["template"])["command"]
    assert command[:3] == ["python", "-m", "maru.launch.node"]  # torchrun, exit codes mapped
    assert command[command.index("--rdzv-endpoint") + 1] == "fmnist-master-0:29500"
    assert command[command.index("--shutdown-timeout") + 1] == "110"  # inside the 120 s lead
    assert command[-5:-3] == ["-m", "maru.launch.entry"]
    assert command[command.index("--nnodes") + 1] == "3"
    assert command[-3:] == ["train.py", "--steps", "10"]
    pod = replicas["Master"]["template"]["spec"]
    assert pod["volumes"] == [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}
    ]
    assert container_of(replicas["Master"]["template"])["ports"][0]["name"] == "pytorchjob-port"


def test_pytorchjob_single_node_has_only_a_master() -> None:
    job = manifests(spec_of(nnodes=1))[-1]
    assert list(job["spec"]["pytorchReplicaSpecs"]) == ["Master"]


def test_pytorchjob_elastic() -> None:
    job = manifests(spec_of(nnodes="2:5", nproc_per_node=4, max_restarts=7, rdzv_port=23456))[-1]
    assert list(job["spec"]["pytorchReplicaSpecs"]) == ["Worker"]
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 5
    assert job["spec"]["elasticPolicy"] == {
        "minReplicas": 2,
        "maxReplicas": 5,
        "rdzvBackend": "c10d",
        "rdzvPort": 23456,
        "rdzvId": "fmnist",
        "maxRestarts": 7,
        "nProcPerNode": 4,
    }
    command = container_of(job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"])["command"]
    assert command[command.index("--rdzv-endpoint") + 1] == "fmnist-worker-0:23456"
    assert command[command.index("--nnodes") + 1] == "2:5"


def test_queue_claim_and_gpus() -> None:
    spec = spec_of(**copy.deepcopy(VARIANTS["pytorchjob-queue-claim-gpu"]))
    pvc, job = manifests(spec)
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert job["spec"]["runPolicy"]["suspend"] is True
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["metadata"]["name"] == "fmnist-checkpoints"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert pvc["spec"]["storageClassName"] == "nfs"
    template = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
    container = container_of(template)
    assert container["resources"]["limits"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "4"}
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert {"name": "checkpoints", "mountPath": "/checkpoints"} in container["volumeMounts"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MARU_CHECKPOINT_DIR"] == "/checkpoints/run1" and env["MARU_JOB_NAME"] == "fmnist"
    claims = [v for v in template["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [
        {"name": "checkpoints", "persistentVolumeClaim": {"claimName": "fmnist-checkpoints"}}
    ]


def test_jobset() -> None:
    spec = spec_of(**copy.deepcopy(VARIANTS["jobset-queue-claim-gpu"]))
    objects = manifests(spec)
    assert len(objects) == 1  # an existing claim: nothing to create
    (job,) = objects
    assert job["apiVersion"] == "jobset.x-k8s.io/v1alpha2" and job["kind"] == "JobSet"
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-b"
    assert job["metadata"]["labels"]["team"] == "ml"
    assert job["spec"]["suspend"] is True
    assert job["spec"]["failurePolicy"]["maxRestarts"] == 3
    assert job["spec"]["network"] == {"enableDNSHostnames": True}
    rdzv, replicated = job["spec"]["replicatedJobs"]
    assert rdzv["name"] == "rdzv" and replicated["dependsOn"] == [{"name": "rdzv", "status": "Ready"}]
    assert replicated["name"] == "trainer" and replicated["replicas"] == 1
    batch = replicated["template"]["spec"]
    assert (batch["parallelism"], batch["completions"]) == (2, 2)
    assert batch["completionMode"] == "Indexed" and batch["backoffLimit"] == 3
    pod = batch["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "trainer"
    assert pod["nodeSelector"] == {"gpu": "a100"}
    container = container_of(batch["template"])
    command = container["command"]
    assert command[command.index("--rdzv-endpoint") + 1] == "fmnist-rdzv-0-0.fmnist:29500"
    assert command[command.index("--node-rank") + 1] == "$(MARU_NODE_RANK)"
    rank_env = next(e for e in container["env"] if e["name"] == "MARU_NODE_RANK")
    assert "job-completion-index" in rank_env["valueFrom"]["fieldRef"]["fieldPath"]
    assert container["workingDir"] == "/app" and container["imagePullPolicy"] == "IfNotPresent"
    assert container["resources"]["limits"]["cpu"] == "0.5"


def test_rendering_errors() -> None:
    no_kube = parse_spec({"name": "a", "entrypoint": {"script": "t.py"}})
    with pytest.raises(ConfigurationError, match=r"no \[kubernetes\] section"):
        manifests(no_kube)
    long_name = "n" * 52
    with pytest.raises(ConfigurationError, match="too long for Kubernetes"):
        manifests(spec_of(name=long_name, kubernetes={"kind": "jobset"}))
    assert manifests(spec_of(name=long_name))  # fits as a PyTorchJob (<name>-worker-0)


def test_examples_render_and_validate(schemas: dict[tuple[str, str], Any]) -> None:
    for path in sorted(EXAMPLES.glob("*.toml")):
        spec = load_spec(path)
        assert spec.entrypoint.script == "examples/train/fashion_mnist_mlp.py"
        assert (REPO / spec.entrypoint.script).is_file()
        for kind in ("trainjob", "pytorchjob", "jobset"):
            assert spec.kubernetes is not None
            variant = spec.model_copy(
                update={"kubernetes": spec.kubernetes.model_copy(update={"kind": kind})}
            )
            objects = manifests(variant)
            validate(schemas, objects[-1])
    fixed = load_spec(EXAMPLES / "fashion_mnist.toml")
    assert fixed.nnodes == "2" and fixed.kubernetes is not None and fixed.kubernetes.queue
    assert load_spec(EXAMPLES / "fashion_mnist_elastic.toml").elastic


def test_cli_dry_run_prints_valid_yaml(
    schemas: dict[tuple[str, str], Any], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from maru.cli import app

    db = tmp_path / "jobs.sqlite"
    result = CliRunner().invoke(
        app,
        ["launch", str(EXAMPLES / "fashion_mnist.toml"), "--on", "kubernetes", "--dry-run", "--db", str(db)],
    )
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in documents] == ["PersistentVolumeClaim", "TrainJob"]
    validate(schemas, documents[-1])
    assert not db.exists()  # a dry run records nothing


@pytest.mark.parametrize("kind", ["pytorchjob", "jobset"])
def test_yaml_is_plain_without_anchors(kind: str) -> None:
    """Master and worker share one pod template; the YAML still spells each out (no &id001/*id001,
    which kubectl reads but people and some tools do not)."""
    spec = spec_of(nnodes="2", kubernetes={"kind": kind})
    text = render_yaml(manifests(spec))
    assert "&id" not in text and "*id" not in text
    assert list(yaml.safe_load_all(text)) == manifests(spec)


def test_cli_reports_a_bad_spec(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from maru.cli import app

    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nnnodes = "2:1"\n[entrypoint]\nscript = "t.py"\n')
    result = CliRunner().invoke(app, ["launch", str(bad), "--on", "kubernetes", "--dry-run"])
    assert result.exit_code == 2
    assert "nnodes: '2:1': MAX must be at least MIN" in result.stderr
    result = CliRunner().invoke(app, ["launch", str(bad), "--on", "nowhere", "--dry-run"])
    assert result.exit_code == 2


# ----------------------------------------------------------------------- loopback API server
class Recorder:
    """A fake API server: answers from ``routes`` and records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.routes: dict[tuple[str, str], tuple[int, Any]] = {}

    def answer(self, method: str, path: str, status: int, body: Any) -> None:
        self.routes[(method, path)] = (status, body)


@pytest.fixture
def api() -> Iterator[tuple[Recorder, Any]]:
    from kubernetes import client

    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            recorder.requests.append(
                {
                    "method": self.command,
                    "path": url.path,
                    "query": {k: v[0] for k, v in parse_qs(url.query).items()},
                    "body": json.loads(raw) if raw else None,
                }
            )
            status, body = recorder.routes.get(
                (self.command, url.path), (404, {"kind": "Status", "message": "not found"})
            )
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            kind = "text/plain" if isinstance(body, str) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    config = client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
    api_client = client.ApiClient(config)
    try:
        yield recorder, api_client
    finally:
        api_client.close()
        server.shutdown()
        server.server_close()


PTJ = "/apis/kubeflow.org/v1/namespaces/ns/pytorchjobs"
TJ = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/ns/trainjobs"
JS = "/apis/jobset.x-k8s.io/v1alpha2/namespaces/ns/jobsets"
PODS = "/api/v1/namespaces/ns/pods"


def pod(name: str, labels: dict[str, str], restarts: int = 0) -> dict[str, Any]:
    status = {"name": "pytorch", "ready": True, "restartCount": restarts, "image": "i", "imageID": ""}
    return {"metadata": {"name": name, "labels": labels}, "status": {"containerStatuses": [status]}}


def test_submit_pytorchjob_with_claim(api: tuple[Recorder, Any]) -> None:
    recorder, api_client = api
    recorder.answer("POST", "/api/v1/namespaces/ns/persistentvolumeclaims", 409, {"message": "exists"})
    recorder.answer("POST", PTJ, 201, {})
    spec = spec_of(kubernetes={"namespace": "ns", "queue": "q", "checkpoint_storage": "1Gi"})
    handle = KubernetesBackend(api_client=api_client).submit(spec)
    assert (handle.backend, handle.job_id, handle.name) == ("kubernetes", "ns/pytorchjob/fmnist", "fmnist")
    assert handle.extra == {"namespace": "ns", "kind": "PyTorchJob", "queue": "q"}
    claim, job = recorder.requests
    assert (claim["method"], claim["path"]) == ("POST", "/api/v1/namespaces/ns/persistentvolumeclaims")
    assert claim["body"]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert (job["method"], job["path"]) == ("POST", PTJ)  # an existing claim is reused
    assert job["body"] == manifests(spec)[-1]


def test_submit_jobset_and_refusal(api: tuple[Recorder, Any]) -> None:
    recorder, api_client = api
    recorder.answer("POST", JS, 201, {})
    spec = spec_of(kubernetes={"namespace": "ns", "kind": "jobset"})
    handle = KubernetesBackend(api_client=api_client).submit(spec)
    assert handle.job_id == "ns/jobset/fmnist"
    assert recorder.requests[-1]["body"]["kind"] == "JobSet"
    recorder.answer("POST", JS, 409, {"kind": "Status", "message": 'jobsets "fmnist" already exists'})
    with pytest.raises(LaunchError, match=r"\(409\): jobsets \"fmnist\" already exists; an object"):
        KubernetesBackend(api_client=api_client).submit(spec)


def test_trainjob_submit_status_logs_and_list(api: tuple[Recorder, Any]) -> None:
    """The default kind end to end against the loopback API: submitted as a TrainJob, its state
    read from Trainer v2's conditions, logs from the runtime's ``node`` container, and the JobSet
    the TrainJob owns listed once, as the TrainJob."""
    recorder, api_client = api
    recorder.answer("POST", TJ, 201, {})
    backend = KubernetesBackend("ns", api_client=api_client)
    handle = backend.submit(crd_strict.k8s_spec(kubernetes={"namespace": "ns"}))
    assert handle.job_id == "ns/trainjob/fmnist" and handle.extra["kind"] == "TrainJob"
    assert recorder.requests[-1]["body"]["spec"]["runtimeRef"]["name"] == "torch-distributed"
    running = {"spec": {}, "status": {"jobsStatus": [{"name": "node", "active": 2}]}}
    recorder.answer("GET", f"{TJ}/fmnist", 200, running)
    recorder.answer("GET", PODS, 200, {"items": []})
    assert backend.status("fmnist").state == "running"
    done = {"spec": {}, "status": {"conditions": [
        {"type": "Created", "status": "True"},
        {"type": "Complete", "status": "True", "message": "TrainJob is completed"}]}}
    recorder.answer("GET", f"{TJ}/fmnist", 200, done)
    status = backend.status("ns/trainjob/fmnist")
    assert (status.state, status.detail) == ("succeeded", "TrainJob is completed")
    suspended = {"spec": {"suspend": True}, "status": {}}
    recorder.answer("GET", f"{TJ}/fmnist", 200, suspended)
    assert backend.status("fmnist").state == "pending"
    recorder.answer("GET", PODS, 200, {"items": [
        pod("fmnist-node-0-0-x", {"batch.kubernetes.io/job-completion-index": "0"})]})
    recorder.answer("GET", f"{PODS}/fmnist-node-0-0-x/log", 200, "step 1\n")
    assert list(backend.logs("fmnist")) == ["step 1"]
    assert recorder.requests[-1]["query"]["container"] == "node"
    recorder.answer("GET", TJ, 200, {"items": [{"metadata": {"name": "fmnist"}, "spec": {}}]})
    owned = {"name": "fmnist", "ownerReferences": [{"kind": "TrainJob", "name": "fmnist"}]}
    recorder.answer("GET", JS, 200, {"items": [{"metadata": owned, "spec": {}}]})
    assert [s.job_id for s in backend.list()] == ["ns/trainjob/fmnist"]


def test_status_pytorchjob(api: tuple[Recorder, Any]) -> None:
    recorder, api_client = api
    conditions = [
        {"type": "Created", "status": "True", "message": "created"},
        {"type": "Running", "status": "True", "message": "PyTorchJob fmnist is running."},
    ]
    recorder.answer("GET", f"{PTJ}/fmnist", 200, {"spec": {}, "status": {"conditions": conditions}})
    pods = [
        pod("fmnist-master-0", {"training.kubeflow.org/replica-type": "master"}, restarts=1),
        pod("fmnist-worker-0", {"training.kubeflow.org/replica-type": "worker"}, restarts=2),
    ]
    recorder.answer("GET", PODS, 200, {"items": pods})
    status = KubernetesBackend(api_client=api_client).status("ns/pytorchjob/fmnist")
    assert (status.state, status.restarts) == ("running", 3)
    assert status.detail == "PyTorchJob fmnist is running."
    assert recorder.requests[-1]["query"]["labelSelector"] == "training.kubeflow.org/job-name=fmnist"


def test_status_jobset_and_lookup_by_name(api: tuple[Recorder, Any]) -> None:
    recorder, api_client = api
    body = {
        "spec": {},
        "status": {
            "restarts": 2,
            "conditions": [{"type": "Completed", "status": "True", "message": "jobset completed"}],
        },
    }
    recorder.answer("GET", f"{JS}/fmnist", 200, body)
    status = KubernetesBackend("ns", api_client=api_client).status("fmnist")  # no kind: try all
    assert (status.state, status.restarts, status.job_id) == ("succeeded", 2, "ns/jobset/fmnist")
    assert [r["path"] for r in recorder.requests] == [f"{TJ}/fmnist", f"{PTJ}/fmnist", f"{JS}/fmnist"]
    recorder.answer("GET", f"{JS}/fmnist", 200, {"spec": {"suspend": True}})
    assert KubernetesBackend(api_client=api_client).status("ns/jobset/fmnist").state == "pending"
    with pytest.raises(LaunchError, match="no TrainJob or PyTorchJob or JobSet 'gone' in namespace 'ns'"):
        KubernetesBackend("ns", api_client=api_client).status("gone")


def test_logs_by_rank_and_all_pods(api: tuple[Recorder, Any]) -> None:
    recorder, api_client = api
    recorder.answer("GET", f"{PTJ}/fmnist", 200, {"spec": {"pytorchReplicaSpecs": {"Master": {}}}})
    labels = {"training.kubeflow.org/replica-type": "worker", "training.kubeflow.org/replica-index": "0"}
    master = {"training.kubeflow.org/replica-type": "master", "training.kubeflow.org/replica-index": "0"}
    recorder.answer("GET", PODS, 200, {"items": [pod("fmnist-worker-0", labels), pod("fmnist-master-0", master)]})
    recorder.answer("GET", f"{PODS}/fmnist-master-0/log", 200, "step 1\nstep 2\n")
    recorder.answer("GET", f"{PODS}/fmnist-worker-0/log", 200, "worker ready")
    backend = KubernetesBackend(api_client=api_client)
    assert list(backend.logs("ns/pytorchjob/fmnist", rank=1)) == ["worker ready"]
    log_request = recorder.requests[-1]
    assert log_request["path"] == f"{PODS}/fmnist-worker-0/log"
    assert log_request["query"]["container"] == "pytorch"
    assert list(backend.logs("ns/pytorchjob/fmnist")) == [
        "[fmnist-master-0] step 1",
        "[fmnist-master-0] step 2",
        "[fmnist-worker-0] worker ready",
    ]
    with pytest.raises(LaunchError, match="no pod for node 5"):
        list(backend.logs("ns/pytorchjob/fmnist", rank=5))


def test_cancel_and_list(api: tuple[Recorder, Any]) -> None:
    recorder, api_client = api
    recorder.answer("DELETE", f"{JS}/fmnist", 200, {"kind": "Status", "status": "Success"})
    backend = KubernetesBackend("ns", api_client=api_client)
    backend.cancel("ns/jobset/fmnist")
    request = recorder.requests[-1]
    assert (request["method"], request["path"]) == ("DELETE", f"{JS}/fmnist")
    assert request["body"]["propagationPolicy"] == "Background"
    recorder.answer("GET", PTJ, 200, {"items": [{"metadata": {"name": "a"}, "spec": {}}]})
    listed = backend.list()  # the JobSet CRD answers 404 here: skipped
    assert [(s.job_id, s.state) for s in listed] == [("ns/pytorchjob/a", "pending")]
    list_request = next(r for r in recorder.requests if r["path"] == PTJ)
    assert list_request["query"]["labelSelector"] == "app.kubernetes.io/managed-by=maru"


def test_jobs_cli_round_trip(api: tuple[Recorder, Any], tmp_path: Path, monkeypatch: Any) -> None:
    """launch records the job; jobs ls/status/cancel find it in the registry."""
    from typer.testing import CliRunner

    from maru.cli import app
    from maru.launch import backend as backend_module

    recorder, api_client = api
    real = backend_module.get_backend
    monkeypatch.setattr(
        backend_module, "get_backend", lambda name, **kw: real(name, api_client=api_client, **kw)
    )
    spec_path = tmp_path / "job.toml"
    spec_path.write_text(
        'name = "fm"\nnnodes = 2\n[entrypoint]\nscript = "t.py"\n'
        '[kubernetes]\nimage = "i:1"\nnamespace = "ns"\nkind = "pytorchjob"\n'
    )
    db = tmp_path / "jobs.sqlite"
    recorder.answer("POST", PTJ, 201, {})
    runner = CliRunner()
    result = runner.invoke(app, ["launch", str(spec_path), "--on", "kubernetes", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "ns/pytorchjob/fm" in result.stdout
    (record,) = JobRegistry(db).list()
    assert (record.backend, record.job_id, record.spec_path) == ("kubernetes", "ns/pytorchjob/fm", str(spec_path))

    result = runner.invoke(app, ["jobs", "ls", "--db", str(db)])
    assert result.exit_code == 0 and "ns/pytorchjob/fm" in result.stdout

    recorder.answer("GET", f"{PTJ}/fm", 200, {"spec": {}, "status": {"conditions": [
        {"type": "Failed", "status": "True", "message": "pod fm-master-0 failed"}]}})  # fmt: skip
    recorder.answer("GET", PODS, 200, {"items": []})
    result = runner.invoke(app, ["jobs", "status", "fm", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "ns/pytorchjob/fm: failed" in result.stdout and "pod fm-master-0 failed" in result.stdout

    result = runner.invoke(app, ["jobs", "cancel", "fm", "--db", str(db)])  # it has failed already
    assert result.exit_code == 0 and "had already finished (failed)" in result.stdout
    assert all(r["method"] != "DELETE" for r in recorder.requests)

    recorder.answer("GET", f"{PTJ}/fm", 200, {"spec": {}, "status": {"conditions": [
        {"type": "Running", "status": "True", "message": "running"}]}})  # fmt: skip
    recorder.answer("DELETE", f"{PTJ}/fm", 200, {})
    result = runner.invoke(app, ["jobs", "cancel", "fm", "--db", str(db)])
    assert result.exit_code == 0 and recorder.requests[-1]["method"] == "DELETE"

    result = runner.invoke(app, ["jobs", "status", "unknown-job", "--db", str(db)])
    assert result.exit_code == 2 and "no job 'unknown-job' in the registry" in result.stderr


def test_get_backend_builds_kubernetes() -> None:
    assert isinstance(get_backend("kubernetes"), KubernetesBackend)
