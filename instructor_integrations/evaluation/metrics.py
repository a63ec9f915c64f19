"""Retrieval and STS metrics, computed as trec_eval / MTEB compute them."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["mrr_at_k", "ndcg_at_k", "recall_at_k", "spearman"]

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Sequence[str]]


def ndcg_at_k(qrels: Qrels, run: Run, k: int) -> float:
    """Mean nDCG@k over the queries of ``qrels`` (trec_eval's linear gain, as pytrec_eval / MTEB).

    Examples:
        >>> ndcg_at_k({"q": {"d1": 1}}, {"q": ["d2", "d1"]}, 10)
        0.6309297535714575
    """
    scores = []
    for query, judged in qrels.items():
        ranked = list(run.get(query, []))[:k]
        dcg = sum(judged.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked))
        ideal = sorted((rel for rel in judged.values() if rel > 0), reverse=True)[:k]
        idcg = sum(rel / math.log2(rank + 2) for rank, rel in enumerate(ideal))
        scores.append(dcg / idcg if idcg > 0 else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def recall_at_k(qrels: Qrels, run: Run, k: int) -> float:
    """Mean fraction of a query's relevant documents found in its top ``k``.

    Examples:
        >>> recall_at_k({"q": {"d1": 1, "d3": 1}}, {"q": ["d2", "d1"]}, 100)
        0.5
    """
    scores = []
    for query, judged in qrels.items():
        relevant = {doc for doc, rel in judged.items() if rel > 0}
        if not relevant:
            continue
        found = relevant.intersection(list(run.get(query, []))[:k])
        scores.append(len(found) / len(relevant))
    return float(np.mean(scores)) if scores else 0.0


def mrr_at_k(qrels: Qrels, run: Run, k: int) -> float:
    """Mean reciprocal rank of the first relevant document within the top ``k``.

    Examples:
        >>> mrr_at_k({"q": {"d1": 1}}, {"q": ["d2", "d1"]}, 10)
        0.5
    """
    scores = []
    for query, judged in qrels.items():
        value = 0.0
        for rank, doc in enumerate(list(run.get(query, []))[:k]):
            if judged.get(doc, 0) > 0:
                value = 1.0 / (rank + 1)
                break
        scores.append(value)
    return float(np.mean(scores)) if scores else 0.0


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks with ties averaged (as scipy.stats.rankdata)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation with ties averaged.

    Examples:
        >>> spearman([1, 2, 3, 4], [10, 20, 30, 40])
        1.0
    """
    x = _ranks(np.asarray(a, dtype=np.float64))
    y = _ranks(np.asarray(b, dtype=np.float64))
    x -= x.mean()
    y -= y.mean()
    denominator = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denominator) if denominator else 0.0
