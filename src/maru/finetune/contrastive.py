"""The fine-tune as a maru ``Task``: a transformer encoder, mean pooling, and an in-batch
contrastive loss (each query's own passage against every other passage of the batch)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..train import Task

__all__ = ["ContrastiveEmbeddingTask", "PairCollate"]


class PairCollate:
    """Tokenizes a batch of pairs into ``{"query": features, "positive": features[, "negative"]}``.

    A class rather than a closure so DataLoader workers can pickle it; the tokenizer loads on
    first use in each process."""

    def __init__(self, base: str, max_length: int) -> None:
        self.base, self.max_length = base, max_length
        self._tokenizer: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"base": self.base, "max_length": self.max_length, "_tokenizer": None}

    def _tokenize(self, texts: Sequence[str]) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.base)
        return dict(
            self._tokenizer(
                list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
        )

    def __call__(self, records: Sequence[dict[str, str]]) -> dict[str, Any]:
        batch = {
            "query": self._tokenize([r["query"] for r in records]),
            "positive": self._tokenize([r["positive"] for r in records]),
        }
        if all(r.get("negative") for r in records):
            batch["negative"] = self._tokenize([r["negative"] for r in records])  # type: ignore[misc]
        return batch


class ContrastiveEmbeddingTask(Task):
    """``training_step`` scores every query against every passage of the batch (cosine × ``scale``)
    and takes the cross-entropy of picking its own: MultipleNegativesRanking-style. The pooling
    is the mean over real tokens, then unit length — what sentence-transformers' MiniLM folder
    declares, so the exported folder embeds exactly as the trained encoder did."""

    def __init__(
        self, base: str, *, lr: float = 5e-5, scale: float = 20.0, warmup_steps: int = 0
    ) -> None:
        super().__init__()
        from transformers import AutoModel

        # No pooler: mean pooling does not use it, and DDP refuses parameters without gradients.
        self.encoder = AutoModel.from_pretrained(base, add_pooling_layer=False)
        self.lr, self.scale, self.warmup_steps = lr, scale, warmup_steps
        self.steps_run = 0  # batches this process trained on (a resumed run counts from its resume)

    def embed(self, features: dict[str, Any]) -> Any:
        import torch.nn.functional as F

        hidden = self.encoder(**features).last_hidden_state
        mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)

    def training_step(self, batch: dict[str, Any]) -> Any:
        import torch
        import torch.nn.functional as F

        queries = self.embed(batch["query"])
        passages = self.embed(batch["positive"])
        if "negative" in batch:
            passages = torch.cat([passages, self.embed(batch["negative"])])
        scores = queries @ passages.T * self.scale
        self.steps_run += 1
        return F.cross_entropy(scores, torch.arange(len(queries), device=scores.device))

    def configure_optimizers(self) -> Any:
        import torch

        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr)
        warmup = max(1, self.warmup_steps)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
        return {"optimizer": optimizer, "lr_scheduler": schedule}
