"""Fine-tune the retriever's embedding model with maru's own Trainer — where the two halves meet.

    from maru.finetune import finetune_embeddings, read_pairs
    finetune_embeddings(read_pairs("pairs.jsonl"), out="my-model", max_steps=300)
    LocalEmbeddings(model="my-model")   # the retriever loads the result

Pairs are (question, the passage that answers it), given or written by a chat model for the
user's own passages (:func:`generate_pairs`). The loss is in-batch contrastive (every other
passage of the batch is a negative, as sentence-transformers' MultipleNegativesRankingLoss), the
run is a normal maru training run (checkpoints, exact resume, DDP under torchrun), and the result
is a sentence-transformers folder. torch and transformers are imported when training starts.
"""

from .pairs import Pair, generate_pairs, read_pairs, write_pairs
from .run import FinetuneResult, finetune_embeddings, launch_finetune

__all__ = [
    "FinetuneResult",
    "Pair",
    "finetune_embeddings",
    "generate_pairs",
    "launch_finetune",
    "read_pairs",
    "write_pairs",
]
