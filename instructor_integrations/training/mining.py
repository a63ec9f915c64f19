"""Hard negatives mined with the model being trained, the rows' own instructions and every positive excluded.

A hard negative is a document the model ranks high for a query although it is not relevant. Mining
with the base model and the instructions the training will use finds the mistakes that training can
fix. Two guards keep false negatives (relevant documents that were never judged, or judged for the
same query in another row) from being trained away: every document that is a positive of the query in
any row is excluded, and a candidate must score at least ``margin`` below the row's own positive; a
rank window (``skip_top``) can leave the very top out as well.

Examples:
    >>> from instructor_integrations import InstructorEncoder
    >>> from instructor_integrations.training.data import TrainingExample
    >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
    >>> rows = [TrainingExample("tides", "The moon pulls the sea."), TrainingExample("bread", "Yeast makes it rise.")]
    >>> mined = mine_hard_negatives(encoder, rows, corpus=["Salt water.", "Flour and water."], num_negatives=1)
    >>> [len(row.negatives) for row in mined]
    [1, 1]
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import check_positive_int
from .data import TrainingExample

__all__ = ["mine_hard_negatives"]

logger = logging.getLogger(__name__)


def mine_hard_negatives(
    encoder: Any,
    examples: Sequence[TrainingExample],
    *,
    corpus: Sequence[str] | None = None,
    num_negatives: int = 1,
    margin: float | None = None,
    skip_top: int = 0,
    batch_size: int | None = None,
) -> list[TrainingExample]:
    """The rows with up to ``num_negatives`` hard negatives each (rows that have some keep theirs).

    Args:
        encoder: An :class:`~instructor_integrations.encoder.InstructorEncoder` of the base model.
        examples: The training rows.
        corpus: The documents to mine from (default: every positive of the rows).
        num_negatives: Negatives per row.
        margin: A candidate must score at least this much below the row's positive (cosine; ``None``: no such rule).
        skip_top: Leave out this many of the best-ranked candidates of each query first.
        batch_size: Rows per forward pass (default: the encoder's).

    Returns:
        New rows, in the same order; a row for which no candidate passes keeps no negative.
    """
    check_positive_int(num_negatives, "num_negatives")
    if isinstance(skip_top, bool) or not isinstance(skip_top, int) or skip_top < 0:
        raise ValueError(f"skip_top must be an int >= 0, got {skip_top!r}")
    documents = list(dict.fromkeys(corpus if corpus is not None else [row.positive for row in examples]))
    index = {text: i for i, text in enumerate(documents)}
    positives: dict[tuple[str | None, str], set[str]] = {}
    for row in examples:
        positives.setdefault((row.query_instruction, row.query), set()).add(row.positive)
    out = list(examples)
    todo = [i for i, row in enumerate(examples) if not row.negatives]
    by_instructions: dict[tuple[str | None, str | None], list[int]] = {}
    for i in todo:
        by_instructions.setdefault((examples[i].query_instruction, examples[i].document_instruction), []).append(i)
    found = 0
    for (query_instruction, document_instruction), members in by_instructions.items():
        docs = _unit(encoder.encode(documents, document_instruction, batch_size=batch_size))
        queries = _unit(encoder.encode([examples[i].query for i in members], query_instruction, batch_size=batch_size))
        scores = queries @ docs.T
        if margin is not None:
            # Each row's positive, from the corpus vectors when it is in the corpus (it usually is).
            missing = list(dict.fromkeys(examples[i].positive for i in members if examples[i].positive not in index))
            extra = _unit(encoder.encode(missing, document_instruction, batch_size=batch_size)) if missing else docs[:0]
            more = {text: extra[k] for k, text in enumerate(missing)}
            own = np.stack([docs[index[p]] if p in index else more[p] for p in (examples[i].positive for i in members)])
            positive_scores = np.sum(queries * own, axis=1)
        for row_number, i in enumerate(members):
            row = examples[i]
            excluded = {index[text] for text in positives[(row.query_instruction, row.query)] if text in index}
            order = [d for d in np.argsort(-scores[row_number], kind="stable") if d not in excluded][skip_top:]
            limit = np.inf if margin is None else positive_scores[row_number] - margin
            picked = [documents[d] for d in order if scores[row_number, d] <= limit][:num_negatives]
            found += len(picked)
            out[i] = dataclasses.replace(row, negatives=tuple(picked))
    logger.info("Mined %d hard negatives for %d rows from %d documents", found, len(todo), len(documents))
    return out


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.asarray(vectors / np.clip(norms, 1e-12, None), dtype=np.float32)
