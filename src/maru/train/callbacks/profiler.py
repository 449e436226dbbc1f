"""``ProfilerCallback``: a ``torch.profiler`` trace of a window of training steps, in the run dir."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import TrainError
from ..callback import Callback
from ._folder import folder_for

if TYPE_CHECKING:
    from ..task import Task


class ProfilerCallback(Callback):
    """Profile training steps ``start`` + ``warmup`` … ``start`` + ``warmup`` + ``active`` - 1
    (counted from where ``fit`` starts) and write a Chrome trace (open it in Perfetto or
    ``chrome://tracing``) to ``dirpath`` (default: ``run_dir/profiler``) as
    ``trace_rank{r}_step{s}.json``, one per rank.

    The profiler runs only over the window: ``start`` steps skipped (start-up, compilation),
    ``warmup`` steps profiled but discarded (the profiler's own start-up), ``active`` steps
    recorded. CPU activity always, CUDA kernels when a GPU is there. ``record_shapes``,
    ``profile_memory`` and ``with_stack`` are ``torch.profiler.profile``'s. ``trace_paths`` lists
    what was written.
    """

    def __init__(
        self,
        dirpath: str | Path | None = None,
        *,
        start: int = 1,
        warmup: int = 1,
        active: int = 3,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
    ) -> None:
        if start < 0 or warmup < 0 or active < 1:
            raise TrainError(
                f"ProfilerCallback(start={start}, warmup={warmup}, active={active}): start and "
                "warmup must be >= 0 and active >= 1"
            )
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.start, self.warmup, self.active = start, warmup, active
        self.record_shapes, self.profile_memory, self.with_stack = record_shapes, profile_memory, with_stack
        self.trace_paths: list[Path] = []
        self._profiler: Any = None
        self._step_seen = 0
        self._rank = 0

    def on_train_start(self, trainer: Any, task: Task) -> None:
        import torch
        from torch.profiler import ProfilerActivity, profile, schedule

        self.dirpath = folder_for("ProfilerCallback", "traces", self.dirpath, trainer, "profiler")
        self._rank = trainer.global_rank
        self._step_seen = trainer.global_step
        activities = [ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(ProfilerActivity.CUDA)
        self._profiler = profile(
            activities=activities,
            schedule=schedule(wait=self.start, warmup=self.warmup, active=self.active, repeat=1),
            on_trace_ready=self._write,
            record_shapes=self.record_shapes,
            profile_memory=self.profile_memory,
            with_stack=self.with_stack,
        )
        self._profiler.start()

    def on_train_batch_end(
        self, trainer: Any, task: Task, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if self._profiler is None or step == self._step_seen:
            return  # not profiling, or a micro-batch of a step still accumulating
        self._step_seen = step
        self._profiler.step()
        if len(self.trace_paths) and self._profiler is not None:
            self._stop()

    def on_train_end(self, trainer: Any, task: Task) -> None:
        self._stop()

    def on_exception(self, trainer: Any, task: Task, exception: BaseException) -> None:
        self._stop()

    def _stop(self) -> None:
        profiler, self._profiler = self._profiler, None
        if profiler is not None:
            profiler.stop()

    def _write(self, profiler: Any) -> None:
        assert self.dirpath is not None
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = self.dirpath / f"trace_rank{self._rank}_step{self._step_seen}.json"
        profiler.export_chrome_trace(str(path))
        self.trace_paths.append(path)
