"""Evaluate retrieval and answers: datasets, metrics, a model judge, experiments in the trace store.

``evaluate(dataset, target)`` runs a dataset (JSONL, CSV or a BEIR folder) through a knowledge
base, retriever or chain, scores each question — recall@1/5/10, nDCG@10, MRR and hit@1 against
relevant ids; exact match, token F1 and contains against reference answers; citation correctness;
optionally faithfulness and relevance judged by a chat model — and stores the experiment, linked to
each question's trace, where ``maru eval`` and ``maru trace ui`` show it. ``assert_scores`` puts a
floor under a score in a test.
"""

from .answers import contains, exact_match, normalize, token_f1
from .citations import check_citations
from .dataset import Dataset, Example, load_dataset
from .experiment import ExperimentResult, default_name, evaluate
from .judge import Judge, Judgement
from .pipeline import Output, Pipeline, as_pipeline, document_id
from .retrieval import hit_at_1, mrr, ndcg_at_k, recall_at_k
from .testing import assert_scores

__all__ = [
    "Dataset",
    "Example",
    "ExperimentResult",
    "Judge",
    "Judgement",
    "Output",
    "Pipeline",
    "as_pipeline",
    "assert_scores",
    "check_citations",
    "contains",
    "default_name",
    "document_id",
    "evaluate",
    "exact_match",
    "hit_at_1",
    "load_dataset",
    "mrr",
    "ndcg_at_k",
    "normalize",
    "recall_at_k",
    "token_f1",
]
