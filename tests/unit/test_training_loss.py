"""The INSTRUCTOR loss equals the authors' ``compute_loss``, re-implemented here loop by loop."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from instructor_integrations.training.loss import InstructorLoss, instructor_loss  # noqa: E402


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def cross_entropy_first(scores: list[float]) -> float:
    """-log softmax(scores)[0], in plain Python floats."""
    top = max(scores)
    return -(scores[0] - top - math.log(sum(math.exp(s - top) for s in scores)))


def authors_loss(q: torch.Tensor, p: torch.Tensor, negatives: list[torch.Tensor], t: float, both: bool) -> float:
    """``compute_loss`` of the authors' train.py: query i against p_i and every hard negative of the batch,
    then p_i against q_i and every other query, each a mean cross-entropy with the first candidate right."""
    size = q.shape[0]
    forward = []
    for i in range(size):
        scores = [cosine(q[i], p[i]) / t]
        for column in negatives:
            scores += [cosine(q[i], column[j]) / t for j in range(size)]
        forward.append(cross_entropy_first(scores))
    loss = sum(forward) / size
    if both:
        backward = []
        for i in range(size):
            scores = [cosine(p[i], q[i]) / t] + [cosine(p[i], q[j]) / t for j in range(size) if j != i]
            backward.append(cross_entropy_first(scores))
        loss += sum(backward) / size
    return loss


@pytest.mark.parametrize("columns", [1, 2])
@pytest.mark.parametrize("both", [True, False])
@pytest.mark.parametrize("t", [0.1, 0.02])
def test_the_loss_equals_the_authors_formula_with_hard_negatives(columns: int, both: bool, t: float) -> None:
    generator = torch.Generator().manual_seed(columns * 10 + int(both))
    q, p, *negatives = (torch.randn(6, 16, generator=generator, dtype=torch.float64) for _ in range(2 + columns))
    got = float(instructor_loss([q, p, *negatives], temperature=t, bidirectional=both))
    assert got == pytest.approx(authors_loss(q, p, negatives, t, both), abs=1e-6, rel=1e-9)


def test_without_hard_negatives_the_other_positives_are_the_negatives() -> None:
    generator = torch.Generator().manual_seed(3)
    q, p = (torch.randn(5, 8, generator=generator, dtype=torch.float64) for _ in range(2))
    # Each query against its positive and the other rows' positives (MultipleNegativesRankingLoss's rule).
    expected = 0.0
    for i in range(5):
        scores = [cosine(q[i], p[i]) / 0.1] + [cosine(q[i], p[j]) / 0.1 for j in range(5) if j != i]
        expected += cross_entropy_first(scores) / 5
    got = float(instructor_loss([q, p], temperature=0.1, bidirectional=False))
    assert got == pytest.approx(expected, abs=1e-9)
    # With hard negatives, in_batch_positives=True adds them to the hard negatives.
    n = torch.randn(5, 8, generator=generator, dtype=torch.float64)
    both = float(instructor_loss([q, p, n], temperature=0.1, bidirectional=False, in_batch_positives=True))
    alone = float(instructor_loss([q, p, n], temperature=0.1, bidirectional=False))
    assert both > alone  # more candidates, the same right answer: a larger cross-entropy


def test_the_loss_has_a_gradient_and_refuses_bad_settings() -> None:
    q = torch.randn(4, 8, requires_grad=True)
    p = torch.randn(4, 8)
    instructor_loss([q, p]).backward()
    assert q.grad is not None and torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="2 or more columns"):
        instructor_loss([q])
    with pytest.raises(ValueError, match="temperature must be a number > 0, got 0"):
        InstructorLoss(object(), temperature=0)
