"""DDP's settings: gradients as views into the reducer's buckets by default (no copy in and out
of the buckets each step) with the same results as copying, and DistributedDataParallel's other
keywords passed through."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
import train_runner as tr  # noqa: E402

pytest.importorskip("torch")

from maru.train.strategies import DDP  # noqa: E402


def test_ddp_uses_bucket_views_and_passes_other_keywords_on() -> None:
    assert DDP().ddp_kwargs == {"gradient_as_bucket_view": True}
    custom = DDP(gradient_as_bucket_view=False, static_graph=True, bucket_cap_mb=50)
    assert custom.ddp_kwargs == {"gradient_as_bucket_view": False, "static_graph": True, "bucket_cap_mb": 50}


@pytest.mark.slow
def test_bucket_views_train_exactly_as_copies(tmp_path: Path) -> None:
    variants = {"views": ["--strategy", "ddp"], "copies": ["--strategy", "ddp", "--copy-buckets"]}
    runs = tr.rank0_weights_of_variants(tmp_path, "scale_run.py", variants)
    assert tr.identical(runs["views"], runs["copies"])
