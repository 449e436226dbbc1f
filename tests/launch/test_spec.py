"""JobSpec: reading TOML and YAML, errors that name the file and field, torchrun arguments, the
job registry and backend lookup."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from maru.errors import ConfigurationError
from maru.launch import JobHandle, JobRegistry, JobSpec, get_backend, load_spec, parse_spec

GOOD_TOML = """\
name = "fmnist"
nnodes = "1:4"
nproc_per_node = 2
max_restarts = 5
checkpoint_dir = "ckpt"

[entrypoint]
script = "train.py"
args = ["--steps", "10"]

[resources]
cpus = 2.5
memory = "8Gi"
gpus = 1

[env]
OMP_NUM_THREADS = "2"

[slurm]
partition = "gpu"
time = "1-02:30:00"
account = "proj"

[kubernetes]
image = "img:1"
queue = "team-a"
kind = "jobset"
"""

GOOD_YAML = """\
name: fmnist
nnodes: 2
nproc_per_node: gpu
entrypoint:
  module: pkg.train
  args: ["--lr", "0.1"]
kubernetes:
  image: img:1
  namespace: research
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_toml_spec_reads_every_section(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "job.toml", GOOD_TOML))
    assert (spec.name, spec.min_nodes, spec.max_nodes, spec.elastic) == ("fmnist", 1, 4, True)
    assert spec.nproc_per_node == 2 and spec.max_restarts == 5
    assert spec.resources.cpus == 2.5 and spec.resources.memory == "8Gi" and spec.resources.gpus == 1
    assert spec.env == {"OMP_NUM_THREADS": "2"}
    assert spec.slurm is not None and spec.slurm.time_seconds == (26 * 60 + 30) * 60
    assert spec.slurm.signal_lead_s is None and spec.slurm_lead_s == 120  # the job's default
    assert spec.kubernetes is not None and spec.kubernetes.kind == "jobset"
    assert spec.kubernetes.shm_size == "2Gi" and spec.kubernetes.checkpoint_mount == "/checkpoints"
    assert spec.rdzv_port == 29500 and spec.hang_timeout_s == 600
    assert spec.source == tmp_path / "job.toml"


def test_yaml_spec_and_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "job.yaml", GOOD_YAML))
    assert spec.nnodes == "2" and not spec.elastic and spec.nproc_per_node == "gpu"
    assert spec.entrypoint.module == "pkg.train" and spec.entrypoint.script is None
    assert spec.kubernetes is not None and spec.kubernetes.namespace == "research"
    assert spec.slurm is None and spec.max_restarts == 3


def test_torchrun_args_fixed_and_module() -> None:
    spec = load_spec_dict({"nnodes": 2, "entrypoint": {"module": "pkg.train", "args": ["-x"]}})
    assert spec.torchrun_args(node_rank=1, rdzv_endpoint="host:1234") == [
        "--nnodes", "2", "--nproc-per-node", "1", "--max-restarts", "3",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", "host:1234", "--rdzv-id", "job",
        "--node-rank", "1", "-m", "pkg.train", "-x",
    ]  # fmt: skip


def test_torchrun_command_elastic_script_default_endpoint() -> None:
    spec = load_spec_dict({"nnodes": "1:3", "rdzv_port": 4000, "nproc_per_node": "auto"})
    command = spec.torchrun_command(python="/usr/bin/python3")
    assert command[:3] == ["/usr/bin/python3", "-m", "torch.distributed.run"]
    assert command[command.index("--nnodes") + 1] == "1:3"
    assert command[command.index("--nproc-per-node") + 1] == "auto"
    assert command[command.index("--rdzv-endpoint") + 1] == "localhost:4000"
    assert "--node-rank" not in command
    assert command[-2:] == ["train.py", "--a"]


def test_nnodes_forms_normalised() -> None:
    assert load_spec_dict({"nnodes": "3:3"}).nnodes == "3"
    assert load_spec_dict({"nnodes": " 2 : 5 "}).nnodes == "2:5"
    assert load_spec_dict({"nproc_per_node": "4"}).nproc_per_node == 4


def load_spec_dict(overrides: dict[str, object]) -> JobSpec:
    data: dict[str, object] = {"name": "job", "entrypoint": {"script": "train.py", "args": ["--a"]}}
    data.update(overrides)
    return parse_spec(data)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"name": "My_Job"}, "name: name 'My_Job' is not a DNS-1123 label"),
        ({"name": "x" * 64}, "is not a DNS-1123 label"),
        ({"entrypoint": {"script": "a.py", "module": "m"}}, "entrypoint: give exactly one of"),
        ({"entrypoint": {"args": []}}, "entrypoint: give exactly one of"),
        ({"entrypoint": {"script": "a.py", "argv": []}}, "entrypoint.argv: unknown field"),
        ({"nnodes": "4:2"}, "nnodes: '4:2': MAX must be at least MIN"),
        ({"nnodes": "0"}, "at least 1 node"),
        ({"nnodes": "two"}, "nnodes: 'two' is not a node count"),
        ({"nnodes": True}, "nnodes: expected a node count"),
        ({"nproc_per_node": 0}, "nproc_per_node"),
        ({"nproc_per_node": "many"}, "nproc_per_node"),
        ({"max_restarts": -1}, "max_restarts: Input should be greater than or equal to 0"),
        ({"rdzv_port": 70000}, "rdzv_port"),
        ({"resources": {"memory": "lots"}}, "resources.memory: 'lots' is not a size"),
        ({"resources": {"gpu": 1}}, "resources.gpu: unknown field (check its spelling)"),
        ({"env": {"1BAD": "x"}}, "env: '1BAD' is not an environment variable name"),
        ({"slurm": {"time": "90 minutes"}}, "slurm.time: '90 minutes' is not a Slurm time limit"),
        ({"kubernetes": {"namespace": "x"}}, "kubernetes.image: required field is missing"),
        ({"kubernetes": {"image": "i", "kind": "tfjob"}}, "kubernetes.kind"),
        ({"kubernetes": {"image": "i", "queue": "Team A"}}, "kubernetes.queue: queue 'Team A'"),
        ({"kubernetes": {"image": "i", "shm_size": "big"}}, "kubernetes.shm_size"),
        ({"kubernetes": {"image": "i", "checkpoint_mount": "ckpt"}}, "not an absolute path"),
        ({"kubernetes": {"image": "i", "labels": {"a": "b c"}}}, "label a='b c'"),
        ({"nproc_per_nod": 2}, "nproc_per_nod: unknown field (check its spelling)"),
    ],
)
def test_bad_fields_are_named(overrides: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_spec_dict(overrides)
    assert expected in str(caught.value)


def test_errors_name_the_file_and_every_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "bad.toml",
        """\
        name = "ok"
        nnodes = "3:1"
        [entrypoint]
        scrpit = "train.py"
        """,
    )
    with pytest.raises(ConfigurationError) as caught:
        load_spec(path)
    text = str(caught.value)
    assert text.startswith(f"job spec {path} is invalid (2 problems)")
    assert "  nnodes: '3:1': MAX must be at least MIN" in text
    assert "  entrypoint.scrpit: unknown field" in text


def test_missing_required_fields(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_spec(write(tmp_path, "job.yml", "nnodes: 2\n"))
    assert "name: required field is missing" in str(caught.value)
    assert "entrypoint: required field is missing" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("job.toml", "name = [", "is not valid TOML"),
        ("job.yaml", "name: [unclosed", "is not valid YAML"),
        ("job.yaml", "- a\n- b\n", "expected a mapping of fields at the top level"),
        ("job.json", "{}", "expected a .toml, .yaml or .yml file"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, text: str, expected: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigurationError, match=expected) as caught:
        load_spec(path)
    assert str(path) in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_spec(tmp_path / "nope.toml")


def test_registry_records_and_finds_jobs(tmp_path: Path) -> None:
    registry = JobRegistry(tmp_path / "sub" / "jobs.sqlite")
    assert registry.list() == []  # no file yet: nothing, and nothing created
    assert not (tmp_path / "sub").exists()
    first = JobHandle("kubernetes", "ns/pytorchjob/a", "a", "a.toml", 100.0, {"kind": "PyTorchJob"})
    second = JobHandle("slurm", "4242", "b", None, 200.0)
    registry.add(first)
    registry.add(second)
    assert [h.job_id for h in registry.list()] == ["4242", "ns/pytorchjob/a"]
    assert registry.list(backend="kubernetes") == [first]
    assert registry.list(limit=1) == [second]
    assert registry.find("a") == [first]  # by name
    assert registry.find("4242") == [second]
    assert registry.find("pytorchjob/a") == [first]  # an id's tail
    assert registry.find("zzz") == []
    registry.remove("slurm", "4242")
    assert registry.list() == [first]


def test_registry_rejects_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigurationError, match="jobs.sqlite"):
        JobRegistry(path).list()


def test_get_backend_errors() -> None:
    with pytest.raises(ConfigurationError, match="unknown launch backend 'mars'"):
        get_backend("mars")
    backend = get_backend("k8s", namespace="team")
    assert backend.name == "kubernetes" and backend.namespace == "team"


def test_signal_lead_is_the_jobs_and_slurm_may_override_it() -> None:
    from maru.launch.spec import shutdown_timeout

    base = {"name": "j", "entrypoint": {"script": "t.py"}}
    assert parse_spec(base).signal_lead_s == 120 and parse_spec(base).slurm_lead_s == 120
    spec = parse_spec({**base, "signal_lead_s": 300, "slurm": {"signal_lead_s": 90}})
    assert (spec.signal_lead_s, spec.slurm_lead_s) == (300, 90)
    assert parse_spec({**base, "slurm": {}}).slurm_lead_s == 120
    # torchrun's wait for checkpoints fits inside the lead, leaving the agent time to exit
    assert [shutdown_timeout(s) for s in (120, 30, 10, 0)] == [110, 20, 5, 0]
    assert parse_spec({**base, "kubernetes": {"image": "i"}}).kubernetes.kind == "trainjob"  # type: ignore[union-attr]
