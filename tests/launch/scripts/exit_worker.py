"""A worker that ends as ``MARU_TEST_EXIT`` says: ``error`` raises, ``preempt`` exits 143 the way
the trainer does after checkpointing on SIGTERM, ``sleep`` waits to be signalled."""

import os
import time

from maru.train.dist import Preempted

how = os.environ.get("MARU_TEST_EXIT", "")
if how == "error":
    raise ValueError("a bug in the training code")
if how == "preempt":
    raise Preempted(3, "/ckpt/step_3")
if how == "sleep":
    time.sleep(60)
