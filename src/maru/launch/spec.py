"""The job spec: one file (TOML or YAML) that says what to run and on how many nodes, read by every
launch backend (local torchrun, Slurm, Kubernetes).

Unknown keys are errors (a typo such as ``nproc_per_nod`` must not be silently ignored), and a bad
file raises :class:`~maru.errors.ConfigurationError` naming the file, the field path and what was
expected. :meth:`JobSpec.torchrun_args` builds the torchrun argument list every backend shares.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ConfigurationError

__all__ = [
    "Entrypoint",
    "JobSpec",
    "KubernetesOptions",
    "Resources",
    "SlurmOptions",
    "load_spec",
    "parse_spec",
    "shutdown_timeout",
]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SLURM_TIME = re.compile(r"^(?:(?P<days>\d+)-)?(?P<h>\d{1,2}):(?P<m>[0-5]\d):(?P<s>[0-5]\d)$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def _dns_label(value: str, what: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"{what} {value!r} is not a DNS-1123 label: use at most 63 lowercase letters, digits "
            "and '-', starting and ending with a letter or digit"
        )
    return value


def _quantity(value: str | int | float) -> str:
    text = str(value).strip()
    if not _QUANTITY.match(text):
        raise ValueError(f"{value!r} is not a size such as '8Gi', '512Mi' or '2G'")
    return text


Quantity = Annotated[str, Field(description="A Kubernetes quantity: 8Gi, 512Mi, 2G.")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Entrypoint(_Section):
    """What each worker process runs: a script path or a module (``python -m``), plus arguments."""

    script: str | None = None
    module: str | None = None
    args: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _exactly_one(self) -> Entrypoint:
        if (self.script is None) == (self.module is None):
            raise ValueError("give exactly one of 'script' (a path) or 'module' (run as python -m)")
        return self

    def argv(self) -> list[str]:
        """The program and its arguments as torchrun takes them (``-m`` marks a module)."""
        if self.module is not None:
            return ["-m", self.module, *self.args]
        assert self.script is not None
        return [self.script, *self.args]


class Resources(_Section):
    """What one node (pod, Slurm node) needs: CPU cores, memory and GPUs."""

    cpus: float | None = Field(default=None, gt=0)
    memory: Quantity | None = None
    gpus: int = Field(default=0, ge=0)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> Any:
        return None if value is None else _quantity(value)


class SlurmOptions(_Section):
    """``[slurm]``: where and for how long ``sbatch`` runs the job."""

    partition: str | None = None
    time: str | None = Field(default=None, description="HH:MM:SS or D-HH:MM:SS")
    account: str | None = None
    qos: str | None = None
    signal_lead_s: int | None = Field(
        default=None, ge=0, description="overrides the job's signal_lead_s under Slurm"
    )
    extra_args: list[str] = Field(default_factory=list)

    @field_validator("time")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        if value is not None and not _SLURM_TIME.match(value):
            raise ValueError(f"{value!r} is not a Slurm time limit: use HH:MM:SS or D-HH:MM:SS")
        return value

    @property
    def time_seconds(self) -> int | None:
        """The time limit in seconds (``None`` without one)."""
        if self.time is None:
            return None
        found = _SLURM_TIME.match(self.time)
        assert found is not None
        days = int(found["days"] or 0)
        return ((days * 24 + int(found["h"])) * 60 + int(found["m"])) * 60 + int(found["s"])


class KubernetesOptions(_Section):
    """``[kubernetes]``: the image, namespace, Kueue queue and volumes of the Kubernetes job."""

    image: str = Field(min_length=1)
    namespace: str = "default"
    queue: str | None = Field(default=None, description="Kueue LocalQueue name")
    kind: Literal["trainjob", "jobset", "pytorchjob"] = Field(
        default="trainjob",
        description="trainjob: Kubeflow Trainer v2 (the default); jobset: a bare JobSet with a "
        "rendezvous pod; pytorchjob: Training Operator v1, for legacy clusters",
    )
    runtime: str = Field(
        default="torch-distributed", description="the ClusterTrainingRuntime a TrainJob uses"
    )
    checkpoint_claim: str | None = Field(default=None, description="PVC holding checkpoints")
    checkpoint_mount: str = "/checkpoints"
    checkpoint_storage: Quantity | None = Field(
        default=None, description="size of a new claim to create for checkpoints"
    )
    storage_class: str | None = None
    shm_size: Quantity = "2Gi"
    service_account: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("namespace", "queue", "checkpoint_claim", "runtime")
    @classmethod
    def _names(cls, value: str | None, info: Any) -> str | None:
        return None if value is None else _dns_label(value, info.field_name)

    @field_validator("checkpoint_storage", "shm_size", mode="before")
    @classmethod
    def _sizes(cls, value: Any) -> Any:
        return None if value is None else _quantity(value)

    @field_validator("checkpoint_mount")
    @classmethod
    def _mount(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} is not an absolute path")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if len(key.rsplit("/", 1)[-1]) > 63 or not _LABEL_KEY.match(key):
                raise ValueError(f"label key {key!r} is not a valid Kubernetes label key")
            if len(text) > 63 or not _LABEL_VALUE.match(text):
                raise ValueError(
                    f"label {key}={text!r}: values are at most 63 letters, digits, '-', '_' or '.'"
                )
        return value


class JobSpec(_Section):
    """One training job, independent of where it runs.

    ``nnodes`` is ``N`` (fixed) or ``MIN:MAX`` (elastic: torchrun keeps going while at least MIN
    nodes are alive); read it as :attr:`min_nodes` / :attr:`max_nodes`.
    """

    name: str
    entrypoint: Entrypoint
    nnodes: str = "1"
    nproc_per_node: int | Literal["auto", "gpu", "cpu"] = 1
    resources: Resources = Field(default_factory=Resources)
    env: dict[str, str] = Field(default_factory=dict)
    max_restarts: int = Field(default=3, ge=0)
    checkpoint_dir: str | None = None
    rdzv_port: int = Field(default=29500, ge=1, le=65535)
    hang_timeout_s: float = Field(default=600.0, gt=0)
    signal_lead_s: int = Field(
        default=120,
        ge=0,
        description="seconds from the preemption signal (SIGTERM) to SIGKILL: Slurm's --signal "
        "lead, the pods' terminationGracePeriodSeconds; the checkpoint must fit in it",
    )
    workdir: str | None = None
    slurm: SlurmOptions | None = None
    kubernetes: KubernetesOptions | None = None

    _source: Path | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _dns_label(value, "name")

    @field_validator("nnodes", mode="before")
    @classmethod
    def _nnodes(cls, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError("expected a node count N or a range 'MIN:MAX', such as 2 or '1:4'")
        parts = str(value).strip().split(":")
        if len(parts) > 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"{value!r} is not a node count N or a range 'MIN:MAX', such as '1:4'")
        low, high = int(parts[0]), int(parts[-1])
        if low < 1:
            raise ValueError(f"{value!r}: a job needs at least 1 node")
        if high < low:
            raise ValueError(f"{value!r}: MAX must be at least MIN")
        return str(low) if low == high else f"{low}:{high}"

    @field_validator("nproc_per_node", mode="before")
    @classmethod
    def _nproc(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError("nproc_per_node must be at least 1")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _ENV_NAME.match(key):
                raise ValueError(f"{key!r} is not an environment variable name")
        return value

    @property
    def min_nodes(self) -> int:
        return int(self.nnodes.split(":")[0])

    @property
    def max_nodes(self) -> int:
        return int(self.nnodes.split(":")[-1])

    @property
    def elastic(self) -> bool:
        """Whether the node count may change while the job runs (MIN < MAX)."""
        return self.min_nodes < self.max_nodes

    @property
    def slurm_lead_s(self) -> int:
        """The lead under Slurm: ``[slurm].signal_lead_s`` when set, else ``signal_lead_s``."""
        if self.slurm is not None and self.slurm.signal_lead_s is not None:
            return self.slurm.signal_lead_s
        return self.signal_lead_s

    @property
    def source(self) -> Path | None:
        """The file this spec was read from, if any."""
        return self._source

    def torchrun_args(
        self, node_rank: int | str | None = None, rdzv_endpoint: str | None = None
    ) -> list[str]:
        """The arguments after ``python -m torch.distributed.run``: c10d rendezvous at
        ``rdzv_endpoint`` (default ``localhost:<rdzv_port>``) with the job name as rendezvous id,
        then the entrypoint. ``node_rank`` may be a string such as ``$(NODE_RANK)``."""
        args = [
            "--nnodes",
            self.nnodes,
            "--nproc-per-node",
            str(self.nproc_per_node),
            "--max-restarts",
            str(self.max_restarts),
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            rdzv_endpoint or f"localhost:{self.rdzv_port}",
            "--rdzv-id",
            self.name,
        ]
        if node_rank is not None:
            args += ["--node-rank", str(node_rank)]
        return args + self.entrypoint.argv()

    def torchrun_command(
        self,
        python: str = "python",
        node_rank: int | str | None = None,
        rdzv_endpoint: str | None = None,
    ) -> list[str]:
        """``[python, "-m", "torch.distributed.run", *torchrun_args(...)]``."""
        return [python, "-m", "torch.distributed.run", *self.torchrun_args(node_rank, rdzv_endpoint)]


def shutdown_timeout(lead_s: int) -> int:
    """torchrun's ``--shutdown-timeout`` inside a preemption lead of ``lead_s`` seconds: how long
    its agent lets workers checkpoint after SIGTERM before it SIGKILLs them, leaving the agent
    10 s (half of a short lead) to exit before the scheduler's own SIGKILL."""
    return max(lead_s - 10, lead_s // 2)


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown field (check its spelling)"
        elif item["type"] == "missing":
            message = "required field is missing"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        elif item["type"] == "model_type":
            message = "expected a table (mapping) of fields"
        lines.append(f"  {path}: {message}")
    return "\n".join(lines)


def parse_spec(data: Any, source: str | Path | None = None) -> JobSpec:
    """Validate a mapping (what a TOML or YAML file holds) into a :class:`JobSpec`."""
    where = f"job spec {source}" if source else "job spec"
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where}: expected a mapping of fields at the top level")
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as exc:
        count = exc.error_count()
        raise ConfigurationError(
            f"{where} is invalid ({count} problem{'s' if count != 1 else ''}):\n{_describe(exc)}"
        ) from None
    spec._source = Path(source) if source else None
    return spec


def load_spec(path: str | Path) -> JobSpec:
    """Read a job spec from ``.toml`` or ``.yaml``/``.yml``."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigurationError(f"job spec {file}: expected a .toml, .yaml or .yml file")
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"job spec {file} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"job spec {file} cannot be read: {exc}") from None
    if suffix == ".toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"job spec {file} is not valid TOML: {exc}") from None
    else:
        try:
            import yaml
        except ImportError:
            raise ConfigurationError(
                f"job spec {file}: reading YAML needs PyYAML (pip install pyyaml), or write TOML"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"job spec {file} is not valid YAML: {exc}") from None
    return parse_spec(data, file)
