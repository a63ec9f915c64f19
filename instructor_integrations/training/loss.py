"""The paper's training objective as a sentence-transformers loss module.

INSTRUCTOR (Su et al., 2023, section 2.3; the authors' ``train.py``, ``compute_loss``) trains with a
contrastive loss over one task's batch. With ``s(a, b)`` the cosine similarity over a temperature
``t``, for ``B`` rows of (query ``q``, positive ``p``, hard negatives ``n``):

* query to documents: each ``q_i`` is scored against its positive ``p_i`` and every hard negative of
  the batch ``n_j``; cross-entropy with ``p_i`` as the answer;
* documents to query (``bidirectional``, the authors' default): each ``p_i`` against its query ``q_i``
  and the other queries ``q_j, j != i``; cross-entropy with ``q_i`` as the answer;
* the loss is the sum of the two means.

The authors' code leaves the other rows' positives out of the first direction; a batch without hard
negatives would then have nothing to contrast, so there (and whenever ``in_batch_positives=True``)
the other rows' positives join the candidates, as in sentence-transformers'
``MultipleNegativesRankingLoss``.

Examples:
    >>> import torch
    >>> q, p, n = torch.eye(3), torch.eye(3), torch.ones(3, 3)  # cosines: 1 to the positive, 0.577 to negatives
    >>> round(float(instructor_loss([q, p, n], temperature=0.1)), 4)  # log(1 + 3 e^-4.23) + log(1 + 2 e^-10)
    0.043
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .._validation import check_positive_int

__all__ = ["CachedInstructorLoss", "InstructorLoss", "instructor_loss"]

#: The temperature of the README's training command (``--cl_temperature 0.1``).
DEFAULT_TEMPERATURE = 0.1


def instructor_loss(
    embeddings: Sequence[Tensor],
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    bidirectional: bool = True,
    in_batch_positives: bool | None = None,
) -> Tensor:
    """The loss of one batch from its embeddings ``[queries, positives, *negative columns]`` (see the module doc).

    Args:
        embeddings: ``(B, d)`` tensors: the queries, the positives, then zero or more columns of hard
            negatives (row ``i`` of each column belongs to query ``i``).
        temperature: Cosine similarities are divided by it.
        bidirectional: Add the documents-to-query direction.
        in_batch_positives: Count the other rows' positives as negatives of each query (``None``: only
            when the batch has no hard negatives).
    """
    if len(embeddings) < 2:
        raise ValueError(f"the loss needs queries and positives (2 or more columns), got {len(embeddings)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    queries, positives, *negative_columns = (F.normalize(column, dim=-1) for column in embeddings)
    size = queries.shape[0]
    positive_scores = (queries * positives).sum(-1, keepdim=True)  # (B, 1)
    candidates = [positive_scores]
    if negative_columns:
        negatives = torch.cat(negative_columns, dim=0)  # every hard negative of the batch
        candidates.append(queries @ negatives.T)
    if in_batch_positives or (in_batch_positives is None and not negative_columns):
        others = queries @ positives.T
        eye = torch.eye(size, dtype=torch.bool, device=queries.device)
        candidates.append(others.masked_fill(eye, float("-inf")))  # a row's own positive is counted once
    scores = torch.cat(candidates, dim=1) / temperature
    labels = torch.zeros(size, dtype=torch.long, device=queries.device)
    loss = F.cross_entropy(scores, labels)
    if bidirectional:
        # Each positive against its own query (the diagonal) and every other query of the batch.
        backward = (positives @ queries.T) / temperature
        loss = loss + F.cross_entropy(backward, torch.arange(size, device=queries.device))
    return loss


class InstructorLoss(nn.Module):
    """The INSTRUCTOR contrastive loss for ``SentenceTransformerTrainer`` (see the module doc).

    The dataset's columns are the query, the positive, and any number of hard-negative columns, in that
    order. Each column's instruction is a sentence-transformers prompt; with ``include_prompt=False``
    pooling the instruction tokens are attended to and left out of the mean, as at inference.

    Args:
        model: The ``SentenceTransformer`` being trained.
        temperature: Cosine similarities are divided by it (the authors' command: 0.1).
        bidirectional: Add the documents-to-query direction (the authors' default).
        in_batch_positives: Count the other rows' positives as negatives (``None``: only without hard
            negatives).

    Examples:
        >>> from sentence_transformers import SentenceTransformer
        >>> model = SentenceTransformer("tests/fixtures/tiny-instructor", device="cpu")
        >>> InstructorLoss(model, temperature=0.05).get_config_dict()["temperature"]
        0.05
    """

    def __init__(
        self,
        model: Any,
        *,
        temperature: float = DEFAULT_TEMPERATURE,
        bidirectional: bool = True,
        in_batch_positives: bool | None = None,
    ) -> None:
        super().__init__()
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
        self.model = model
        self.temperature = float(temperature)
        self.bidirectional = bidirectional
        self.in_batch_positives = in_batch_positives

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """The loss of one batch: each column through the model, then :func:`instructor_loss`."""
        embeddings = [self.model(features)["sentence_embedding"] for features in sentence_features]
        return instructor_loss(
            embeddings,
            temperature=self.temperature,
            bidirectional=self.bidirectional,
            in_batch_positives=self.in_batch_positives,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """The settings, for the model card."""
        return {
            "temperature": self.temperature,
            "bidirectional": self.bidirectional,
            "in_batch_positives": self.in_batch_positives,
        }

    @property
    def citation(self) -> str:
        """The paper, for the model card."""
        return (
            "@inproceedings{su-etal-2023-one,\n"
            "  title = {One Embedder, Any Task: Instruction-Finetuned Text Embeddings},\n"
            "  author = {Su, Hongjin and Shi, Weijia and Kasai, Jungo and Wang, Yizhong and Hu, Yushi and "
            "Ostendorf, Mari and Yih, Wen-tau and Smith, Noah A. and Zettlemoyer, Luke and Yu, Tao},\n"
            "  booktitle = {Findings of the Association for Computational Linguistics: ACL 2023},\n"
            "  year = {2023}\n"
            "}"
        )


def _cached_loss_mixin() -> type:
    from sentence_transformers.base.losses.gradcache import CachedLossMixin

    return CachedLossMixin  # type: ignore[no-any-return]


class CachedInstructorLoss(_cached_loss_mixin(), InstructorLoss):  # type: ignore[misc]
    """:class:`InstructorLoss` with GradCache: large batches in the memory of ``mini_batch_size`` rows.

    sentence-transformers' GradCache machinery (``CachedLossMixin``) embeds the batch in mini-batches
    without gradients, takes the loss and its gradients with respect to the embeddings over the whole
    batch, then embeds each mini-batch again with gradients (replaying its random state, so dropout
    draws the same masks) and feeds the cached gradients in. The gradients are those of
    :class:`InstructorLoss` on the whole batch; the price is a second forward pass.

    Args:
        model: The ``SentenceTransformer`` being trained.
        mini_batch_size: Rows embedded at once (the memory bound).
        temperature: As :class:`InstructorLoss`.
        bidirectional: As :class:`InstructorLoss`.
        in_batch_positives: As :class:`InstructorLoss`.

    Examples:
        >>> from sentence_transformers import SentenceTransformer
        >>> model = SentenceTransformer("tests/fixtures/tiny-instructor", device="cpu")
        >>> CachedInstructorLoss(model, mini_batch_size=8).get_config_dict()["mini_batch_size"]
        8
    """

    def __init__(
        self,
        model: Any,
        *,
        mini_batch_size: int = 32,
        temperature: float = DEFAULT_TEMPERATURE,
        bidirectional: bool = True,
        in_batch_positives: bool | None = None,
    ) -> None:
        InstructorLoss.__init__(
            self, model, temperature=temperature, bidirectional=bidirectional, in_batch_positives=in_batch_positives
        )
        check_positive_int(mini_batch_size, "mini_batch_size")
        self.mini_batch_size = mini_batch_size

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        """The loss of one batch, by GradCache (the backward pass re-embeds each mini-batch)."""
        return self.forward_cached(sentence_features, labels)  # type: ignore[operator,no-any-return]

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """:func:`instructor_loss` of the whole batch from its mini-batches' embeddings (the mixin's hook)."""
        loss = instructor_loss(
            [torch.cat(column) for column in reps],
            temperature=self.temperature,
            bidirectional=self.bidirectional,
            in_batch_positives=self.in_batch_positives,
        )
        if with_backward:
            loss.backward()  # type: ignore[no-untyped-call]
            loss = loss.detach()
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        """The settings, for the model card."""
        return {**super().get_config_dict(), "mini_batch_size": self.mini_batch_size}
