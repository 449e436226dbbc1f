"""Run as a script: an experiment over a dataset whose pipeline logs each question it runs to a file
and SIGKILLs its own process when it reaches question ``KILL_AT`` (0: never).

    python _resume_script.py STORE DATASET LOG KILL_AT
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from maru.eval import Output, evaluate


class LoggingPipeline:
    def __init__(self, log: Path, kill_at: int) -> None:
        self.log, self.kill_at = log, kill_at

    def config(self) -> dict[str, Any]:
        return {"pipeline": "logging"}

    def run(self, question: str, *, depth: int, answer: bool) -> Output:
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(question + "\n")
        if self.kill_at and len(self.log.read_text(encoding="utf-8").splitlines()) == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return Output(ranked=[question.split()[-1]], answer=question.split()[-1], passages=[question])


if __name__ == "__main__":
    store, dataset, log, kill_at = sys.argv[1:5]
    result = evaluate(dataset, LoggingPipeline(Path(log), int(kill_at)), name="resumable", store=store, progress=False)
    print(len(result.results), result.summary["hit@1"])
