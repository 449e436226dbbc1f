"""A worker that ends as ``MARU_TEST_EXIT`` says: ``error`` raises, ``preempt`` exits 143 the way
the trainer does after checkpointing on SIGTERM, ``sleep`` touches ``MARU_TEST_READY`` and waits to be signalled."""

import os
import time

from maru.train.dist import Preempted

how = os.environ.get("MARU_TEST_EXIT", "")
if how == "error":
    raise ValueError("a bug in the training code")
if how == "preempt":
    raise Preempted(3, "/ckpt/step_3")
if how == "sleep":
    from pathlib import Path

    Path(os.environ["MARU_TEST_READY"]).touch()  # the test signals only once the worker runs
    time.sleep(60)
