"""Checkpoints: sharded (``torch.distributed.checkpoint``), optionally async, atomic, last k kept.

Layout under ``directory``::

    step_000001000/                 one complete checkpoint (published by a rename)
        .metadata  __0_0.distcp …   model + optimizer state, written by DCP (each rank its shards)
        extra_rank0.pt …            per rank: scheduler states and ``extra`` (trainer state, data
                                    position, RNG states), torch.save of weights_only-loadable types
        manifest.json               step, world size, every file with its size and sha256, time,
                                    torch version — written last
    step_000002000.tmp-3f9a…/       a save in progress, or the leftover of one that died

Why it cannot be torn: every rank writes into the ``.tmp-`` folder and fsyncs what it wrote; after a
barrier rank 0 writes the manifest, fsyncs it, renames the folder to ``step_…`` and fsyncs the
parent. A process killed at any point leaves either the previous checkpoint as the newest
complete one, or a ``.tmp-`` folder that :meth:`CheckpointManager.latest` ignores and the next save
removes. A checkpoint whose files were later truncated, deleted or changed fails the size or hash
check of its manifest and is skipped with a warning naming it. Every file is hashed (SHA-256, read in
blocks, several files at once), whatever its size, so corruption that keeps a file's length is caught
too; manifests written before that, which hash only files up to 16 MiB, still verify (sizes, and the
hashes they have).

Resume goes through :meth:`CheckpointManager.load_latest`: the newest checkpoint that verifies is
loaded, and one that verifies but does not load (a state dict of other shapes, a scheduler count
that differs) is skipped with a warning for the one before it. When none loads, that is an error
naming them, not a silent fresh start over a half-loaded model.

Model and optimizer go through ``get_state_dict`` / ``set_state_dict`` of
``torch.distributed.checkpoint.state_dict``, so one code path serves a plain module, DDP, FSDP2
(``fully_shard``) and tensor-parallel DTensors, and a checkpoint can be loaded on another world
size (DCP reshards).

World-size change on load: rank ``r`` gets the ``extra`` saved by rank ``r`` when that rank existed,
otherwise rank 0's with the RNG states (values made by :func:`capture_rng`) removed and the RNGs
seeded from ``(step, rank)`` instead, so new ranks do not all replay rank 0's random stream. The
data position is global (see :class:`maru.train.data.ShardedDataset`), so any rank's copy serves.
The returned dict also holds ``"_checkpoint"``: path, step, saved and current world size, and the
rank whose ``extra`` was used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maru.errors import CheckpointError

if TYPE_CHECKING:
    import torch

__all__ = ["CheckpointManager", "capture_rng", "export_safetensors", "restore_rng"]

MANIFEST = "manifest.json"
FORMAT = "maru-checkpoint/1"
_STEP_DIR = re.compile(r"^step_(\d{9,})$")
_RNG_MARK = "maru_rng"
_SINGLE_PROCESS_WARNING = ".*uninitialized, assuming the intent is to .* in a single process"


# ---------------------------------------------------------------------------------------------
# process group helpers (all no-ops without one)


def _dist() -> Any | None:
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def _rank_world() -> tuple[int, int]:
    dist = _dist()
    return (dist.get_rank(), dist.get_world_size()) if dist is not None else (0, 1)


def _broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    dist = _dist()
    if dist is None:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _gather(value: Any) -> list[Any]:
    """Every rank's ``value``, on every rank (also a barrier)."""
    dist = _dist()
    if dist is None:
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def _barrier() -> None:
    dist = _dist()
    if dist is not None:
        dist.barrier()


@contextlib.contextmanager
def _quiet_single_process() -> Iterator[None]:
    """DCP warns on every save/load without a process group; single-process use is intended here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SINGLE_PROCESS_WARNING)
        yield


# ---------------------------------------------------------------------------------------------
# files


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on a directory
        _fsync_file(path)


_HASH_BLOCK = 1 << 20
_HASH_THREADS = 4


def _sha256(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks (never whole into memory)."""
    digest = hashlib.sha256()
    block = bytearray(_HASH_BLOCK)
    view = memoryview(block)
    with path.open("rb", buffering=0) as f:
        while count := f.readinto(block):
            digest.update(view[:count])
    return digest.hexdigest()


def _sha256_all(paths: Sequence[Path]) -> list[str]:
    """Hashes of ``paths``, in order, several at a time: hashlib lets go of the GIL while it
    hashes a block, so a few threads keep both the disk and the cores busy on multi-GB shards."""
    if len(paths) < 2:
        return [_sha256(p) for p in paths]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(_HASH_THREADS, len(paths)), thread_name_prefix="maru-sha256") as pool:
        return list(pool.map(_sha256, paths))


def _torch_save_synced(obj: Any, path: Path) -> None:
    import torch

    with path.open("wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def _publish(tmp: Path, final: Path) -> None:
    """Make ``tmp`` the checkpoint ``final`` in one rename (replacing an older one of that step)."""
    old = None
    if final.exists():
        old = final.with_name(f"{final.name}.tmp-replaced-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
    os.rename(tmp, final)
    _fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _step_dirs(directory: Path) -> list[tuple[int, Path]]:
    """Published checkpoint folders, oldest first."""
    if not directory.is_dir():
        return []
    found = []
    for child in directory.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def _read_manifest(path: Path) -> dict[str, Any]:
    return json.loads((path / MANIFEST).read_text())  # type: ignore[no-any-return]


@dataclass
class _Pending:
    """An async save whose DCP write may still be running; published by :meth:`wait`."""

    step: int
    tmp: Path
    final: Path
    future: Any


# ---------------------------------------------------------------------------------------------
# the manager


class CheckpointManager:
    """Writes, finds and loads checkpoints under ``directory`` (see the module docstring).

    ``save`` and ``load`` are collective: every rank calls them. ``keep_last`` complete
    checkpoints are kept. With ``async_save`` the model/optimizer state is staged to CPU memory and
    written in a background thread (over a separate gloo group) while training continues; the
    checkpoint is published by :meth:`wait`, which the next ``save`` calls first — call it at the
    end of training too. Every file gets a sha256 in the manifest, checked by :meth:`verify`.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        keep_last: int = 3,
        async_save: bool = False,
    ):
        if keep_last < 1:
            raise CheckpointError(f"keep_last must be at least 1, got {keep_last}")
        self.directory = Path(directory)
        self.keep_last = keep_last
        self.async_save = async_save
        self._pending: _Pending | None = None
        self._async_group: Any = None

    # -- saving --------------------------------------------------------------------------------

    def save(
        self,
        step: int,
        *,
        model: Any,
        optimizers: Sequence[Any] = (),
        schedulers: Sequence[Any] = (),
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Save a checkpoint of ``step``; returns its final path (with ``async_save``, the path it
        will have once :meth:`wait` published it)."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint import FileSystemWriter
        from torch.distributed.checkpoint.api import CheckpointException
        from torch.distributed.checkpoint.state_dict import get_state_dict

        self.wait()
        rank, _ = _rank_world()
        final = self.directory / f"step_{step:09d}"
        prepared: tuple[str | None, str | None] = (None, None)
        if rank == 0:
            try:
                prepared = (str(self._prepare(final)), None)
            except OSError as exc:
                prepared = (None, f"cannot create a checkpoint folder in {self.directory}: {exc}")
        tmp_name, error = _broadcast(prepared)
        if error is not None:
            raise CheckpointError(error)
        tmp = Path(tmp_name)

        errors = [e for e in _gather(self._write_extra(tmp, rank, schedulers, extra or {})) if e]
        if errors:
            raise CheckpointError(f"checkpoint of step {step} was not saved: {'; '.join(errors)}")
        model_sd, optim_sd = get_state_dict(model, list(optimizers))
        state = {"model": model_sd, "optim": optim_sd}
        writer = FileSystemWriter(str(tmp), sync_files=True)
        if self.async_save:
            if _dist() is None:  # DCP warns from its writer thread, out of reach of catch_warnings
                warnings.filterwarnings("ignore", message=_SINGLE_PROCESS_WARNING)
            future = dcp.async_save(
                state, storage_writer=writer, process_group=self._async_process_group()
            )
            self._pending = _Pending(step, tmp, final, future)
            return final
        try:
            with _quiet_single_process():
                dcp.save(state, storage_writer=writer)
        except (Exception, CheckpointException) as exc:  # CheckpointException is a BaseException
            raise CheckpointError(
                f"checkpoint of step {step} was not saved: {_cause(exc)}"
            ) from exc
        self._finalize(step, tmp, final, None)
        return final

    def wait(self) -> None:
        """Finish an in-flight async save and publish it (collective when one is pending)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        local_error = None
        try:
            result = getattr(pending.future, "upload_completion", pending.future)
            result.result()
        except Exception as exc:  # the write failed on this rank; the others must learn it
            local_error = f"{type(exc).__name__}: {exc}"
        self._finalize(pending.step, pending.tmp, pending.final, local_error)

    def _prepare(self, final: Path) -> Path:
        """Rank 0: remove leftovers of saves that died and create this save's temporary folder."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for child in self.directory.iterdir():
            if ".tmp-" in child.name and child.name.startswith("step_"):
                shutil.rmtree(child, ignore_errors=True)
        tmp = final.with_name(f"{final.name}.tmp-{uuid.uuid4().hex[:12]}")
        tmp.mkdir()
        return tmp

    def _write_extra(
        self, tmp: Path, rank: int, schedulers: Sequence[Any], extra: dict[str, Any]
    ) -> str | None:
        import pickle

        import torch

        path = tmp / f"extra_rank{rank}.pt"
        payload = {"schedulers": [s.state_dict() for s in schedulers], "extra": extra}
        try:
            _torch_save_synced(payload, path)
            torch.load(path, weights_only=True)  # fail now, not at resume time
        except (pickle.PicklingError, pickle.UnpicklingError, AttributeError, TypeError) as exc:
            return (
                f"the extra state of rank {rank} holds types that cannot be loaded safely "
                f"(weights_only): {exc}; keep it to tensors, numbers, strings, lists, tuples, dicts"
            )
        except OSError as exc:
            return f"rank {rank} could not write {path}: {exc}"
        return None

    def _finalize(self, step: int, tmp: Path, final: Path, local_error: str | None) -> None:
        """All ranks: agree that every write succeeded; rank 0 then writes the manifest, publishes
        the folder and prunes."""
        errors = [e for e in _gather(local_error) if e is not None]
        rank, world = _rank_world()
        outcome: str | None = "; ".join(errors) if errors else None
        if rank == 0 and outcome is None:
            try:
                self._write_manifest(tmp, step, world)
                _publish(tmp, final)
                self._prune()
            except OSError as exc:
                outcome = f"could not publish checkpoint {final}: {exc}"
        outcome = _broadcast(outcome)
        if outcome is not None:
            raise CheckpointError(f"checkpoint of step {step} was not saved: {outcome}")

    def _write_manifest(self, tmp: Path, step: int, world: int) -> None:
        import torch

        paths = sorted(p for p in tmp.rglob("*") if p.is_file())
        files = {
            path.relative_to(tmp).as_posix(): {"size": path.stat().st_size, "sha256": digest}
            for path, digest in zip(paths, _sha256_all(paths), strict=True)
        }
        manifest = {
            "format": FORMAT,
            "step": step,
            "world_size": world,
            "time": time.time(),
            "time_iso": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "torch": torch.__version__,
            "files": files,
        }
        path = tmp / MANIFEST
        with path.open("w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)

    def _prune(self) -> None:
        """Keep the newest ``keep_last`` complete checkpoints; remove older and broken ones."""
        dirs = _step_dirs(self.directory)
        kept = 0
        for _, path in reversed(dirs):
            if kept < self.keep_last and self.verify(path, hashes=False) is None:
                kept += 1
            elif kept:  # only remove what is older than a complete checkpoint
                shutil.rmtree(path, ignore_errors=True)

    def _async_process_group(self) -> Any:
        """A gloo group of its own for async saves, so the background write never shares a
        communicator with the training step's collectives."""
        dist = _dist()
        if dist is None:
            return None
        if self._async_group is None:
            self._async_group = dist.new_group(backend="gloo")
        return self._async_group

    # -- finding -------------------------------------------------------------------------------

    def verify(self, path: str | os.PathLike[str], *, hashes: bool = True) -> str | None:
        """What is wrong with the checkpoint at ``path``, or None when it is complete: the manifest
        is readable, and every file it lists is present with its size and its sha256 (checked
        when recorded: manifests from before every file was hashed lack it for large files)."""
        p = Path(path)
        if not p.is_dir():
            return "its folder does not exist"
        try:
            manifest = _read_manifest(p)
            files = manifest["files"]
            int(manifest["world_size"])
        except FileNotFoundError:
            return "no manifest.json (the save did not finish)"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return f"manifest.json is unreadable ({type(exc).__name__}: {exc})"
        if ".metadata" not in files:
            return "the manifest lists no DCP .metadata file"
        for name, entry in files.items():
            try:
                size = (p / name).stat().st_size
            except OSError:
                return f"{name} is missing"
            if size != entry.get("size"):
                return f"{name} has {size} bytes, the manifest says {entry.get('size')}"
        if hashes:
            return _hash_problem(p, files)
        return None

    def latest(self) -> Path | None:
        """The newest complete checkpoint, or None. Broken newer ones are skipped with a warning
        naming them; ``.tmp-`` folders of unfinished saves are ignored."""
        return self._newest_complete(skip=(), stacklevel=3)

    def _newest_complete(self, skip: Sequence[Path], stacklevel: int) -> Path | None:
        for _, path in reversed(_step_dirs(self.directory)):
            if path in skip:
                continue
            problem = self.verify(path)
            if problem is None:
                return path
            warnings.warn(
                f"skipping checkpoint {path}: {problem}; using the previous one",
                RuntimeWarning,
                stacklevel=stacklevel,
            )
        return None

    def load_latest(
        self,
        *,
        model: Any,
        optimizers: Sequence[Any] = (),
        schedulers: Sequence[Any] = (),
    ) -> tuple[Path, dict[str, Any]] | None:
        """Load the newest checkpoint that verifies and loads (collective); returns its path and
        this rank's ``extra``, or None when there is none.

        Rank 0 picks the candidate (so the shards are hashed once, not once per rank); a candidate
        that fails to load on any rank is skipped with a warning and the one before it is tried.
        When every complete checkpoint fails to load, :class:`CheckpointError` names them: the
        model may be half-loaded by then, and starting afresh over it would hide the mismatch."""
        failed: list[tuple[Path, str]] = []
        rank, _ = _rank_world()
        while True:
            chosen = self._newest_complete([p for p, _ in failed], 4) if rank == 0 else None
            path = _broadcast(None if chosen is None else str(chosen))
            if path is None:
                break
            error, extra = self._try_load(
                Path(path), model=model, optimizers=optimizers, schedulers=schedulers
            )
            errors = [e for e in _gather(error) if e is not None]
            if not errors:
                return Path(path), extra
            failed.append((Path(path), errors[0]))
            if rank == 0:
                warnings.warn(
                    f"checkpoint {path} verifies but does not load ({errors[0]}); trying the "
                    "previous one",
                    RuntimeWarning,
                    stacklevel=2,
                )
        if failed:
            raise CheckpointError(_none_loads(self.directory, failed))
        return None

    def _try_load(self, path: Path, **parts: Any) -> tuple[str | None, dict[str, Any]]:
        """This rank's (error, extra) of loading ``path``: the error as text, so ranks can agree."""
        try:
            return None, self.load(path, verified=True, **parts)
        except CheckpointError as exc:
            return str(exc), {}

    # -- loading -------------------------------------------------------------------------------

    def load(
        self,
        path: str | os.PathLike[str],
        *,
        model: Any,
        optimizers: Sequence[Any] = (),
        schedulers: Sequence[Any] = (),
        verified: bool = False,
    ) -> dict[str, Any]:
        """Load model, optimizers and schedulers in place from ``path`` (collective); returns this
        rank's ``extra`` (see the module docstring for a world-size change). ``verified``: the
        caller has just checked the files (:meth:`load_latest` does), so they are not hashed again.
        """
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint import FileSystemReader
        from torch.distributed.checkpoint.api import CheckpointException
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        p = Path(path)
        problem = self.verify(p, hashes=not verified)
        if problem is not None:
            raise CheckpointError(f"cannot load checkpoint {p}: {problem}")
        manifest = _read_manifest(p)
        saved_world = int(manifest["world_size"])
        rank, world = _rank_world()
        optimizers = list(optimizers)
        model_sd, optim_sd = get_state_dict(model, optimizers)
        state: dict[str, Any] = {"model": model_sd}
        if optimizers:
            state["optim"] = optim_sd
        try:
            with _quiet_single_process():
                dcp.load(state, storage_reader=FileSystemReader(str(p)))
        except (Exception, CheckpointException) as exc:  # CheckpointException is a BaseException
            raise CheckpointError(
                f"cannot load checkpoint {p} into this model/optimizer ({_cause(exc)}); check "
                "that the model and optimizers are built as when it was saved"
            ) from exc
        set_state_dict(
            model,
            optimizers,
            model_state_dict=state["model"],
            optim_state_dict=state.get("optim", {}),
        )

        source_rank = rank if rank < saved_world else 0
        payload = _load_extra(p / f"extra_rank{source_rank}.pt")
        saved_schedulers = payload.get("schedulers", [])
        if len(saved_schedulers) != len(schedulers):
            raise CheckpointError(
                f"checkpoint {p} holds {len(saved_schedulers)} scheduler state(s), "
                f"{len(schedulers)} scheduler(s) were given; configure the same schedulers"
            )
        for scheduler, sd in zip(schedulers, saved_schedulers, strict=True):
            scheduler.load_state_dict(sd)
        extra = dict(payload.get("extra", {}))
        if source_rank != rank:
            extra = {k: v for k, v in extra.items() if not _is_rng_state(v)}
            _seed_all(_derived_seed(int(manifest["step"]), rank))
        extra["_checkpoint"] = {
            "path": str(p),
            "step": int(manifest["step"]),
            "saved_world_size": saved_world,
            "world_size": world,
            "source_rank": source_rank,
        }
        return extra


def _cause(exc: BaseException) -> str:
    """``Type: message`` of what went wrong; for DCP's CheckpointException, of the first failing
    rank's own exception (its text otherwise carries every rank's whole traceback)."""
    failures = getattr(exc, "failures", None)
    if isinstance(failures, dict) and failures:
        rank, (inner, _) = next(iter(sorted(failures.items(), key=lambda item: item[0])))
        return f"rank {rank}: {type(inner).__name__}: {inner}"
    return f"{type(exc).__name__}: {exc}"


def _hash_problem(path: Path, files: dict[str, Any]) -> str | None:
    """The first file under ``path`` whose recorded sha256 does not match, as a problem."""
    names = [name for name, entry in files.items() if "sha256" in entry]
    digests = _sha256_all([path / name for name in names])
    for name, digest in zip(names, digests, strict=True):
        if digest != files[name]["sha256"]:
            return f"{name} does not match its sha256"
    return None


def _load_extra(path: Path) -> dict[str, Any]:
    import pickle

    import torch

    try:
        payload = torch.load(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"cannot read {path} ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} does not hold a maru extra state (a dict)")
    return payload


def _none_loads(directory: Path, failed: Sequence[tuple[Path, str]]) -> str:
    listed = "\n".join(f"  - {path.name}: {error}" for path, error in failed)
    return (
        f"none of the {len(failed)} checkpoints in {directory} loads into this model:\n{listed}\n"
        "build the model, optimizers and schedulers as when they were saved, or give another "
        "checkpoint_dir"
    )


# ---------------------------------------------------------------------------------------------
# export


def export_safetensors(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write the model's full (unsharded) weights to one ``.safetensors`` file (collective).

    Sharded parameters (FSDP2, tensor parallel) are gathered to rank 0 on CPU, which writes the file
    atomically (temporary file, fsync, rename). Keys are the plain module names (no ``module.``).
    """
    from safetensors.torch import save_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.tensor import DTensor

    target = Path(path)
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state: dict[str, Any] = get_model_state_dict(model, options=options)
    rank, _ = _rank_world()
    error = None
    if rank == 0:
        tensors: dict[str, torch.Tensor] = {}
        storages: set[int] = set()
        for name, value in state.items():
            if isinstance(value, DTensor):
                value = value.full_tensor()
            if not hasattr(value, "detach"):
                continue
            tensor = value.detach().cpu().contiguous()
            pointer = tensor.untyped_storage().data_ptr()
            if pointer in storages:  # tied weights: safetensors refuses shared memory
                tensor = tensor.clone()
            storages.add(tensor.untyped_storage().data_ptr())
            tensors[name] = tensor
        tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            save_file(tensors, str(tmp))
            os.chmod(tmp, 0o644)  # the writer creates it private; weights are meant to be shared
            _fsync_file(tmp)
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            error = f"could not write {target}: {exc}"
    error = _broadcast(error)
    if error is not None:
        raise CheckpointError(error)
    return target


# ---------------------------------------------------------------------------------------------
# RNG


def capture_rng() -> dict[str, Any]:
    """The state of every random generator a training step may use: Python's ``random``, numpy's
    global generator, torch's CPU generator and each CUDA device's. Safe for ``weights_only``."""
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # type: ignore[misc]
    keys = np.asarray(keys)
    state: dict[str, Any] = {
        _RNG_MARK: 1,
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back what :func:`capture_rng` captured (CUDA states for as many devices as both have)."""
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available():
        for device, device_state in enumerate(cuda[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state, device)


def _is_rng_state(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_RNG_MARK) == 1


def _derived_seed(step: int, rank: int) -> int:
    digest = hashlib.blake2b(f"maru-rng:{step}:{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _seed_all(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
