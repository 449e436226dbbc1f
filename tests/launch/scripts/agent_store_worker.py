"""One worker of a simulated torchrun attempt that shares the agent's store (what torchrun does by
default): start the group through ``maru.train.dist.init_process_group``, all-reduce, print the sum.
The environment is what torchrun's agent would give (``TORCHELASTIC_USE_AGENT_STORE=True``,
``TORCHELASTIC_RESTART_COUNT``, ``MASTER_ADDR``/``MASTER_PORT`` of the agent's store)."""

from __future__ import annotations

import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist

from maru.train.dist import destroy_process_group, init_process_group

delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
time.sleep(delay)
init_process_group(backend="gloo", timeout=timedelta(seconds=20))
value = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(value)
print(f"sum={value.item():g}", flush=True)
destroy_process_group()
