"""Classification scored as MTEB 1.x scores it (the protocol behind the published Banking77 numbers).

MTEB's ``logReg`` classification runs ten experiments. Each one trains a logistic regression on a few
training texts per label (eight) and scores it on the whole test split; the reported accuracy and
macro F1 are the means over the ten experiments. Which training texts an experiment gets is fixed by
this sequence:

* the index order of the training split is shuffled in place, and each experiment shuffles the
  order the previous one left;
* every shuffle uses NumPy's legacy generator seeded with 42 afresh: MTEB seeds the global generator
  once for the task and again whenever it creates an evaluator, which it does after each
  experiment's shuffle;
* an experiment keeps the first eight texts of each label in that order.

The regression is scikit-learn's ``LogisticRegression`` with its defaults and ``max_iter=100``.
With the packaged all-MiniLM-L6-v2 this reproduces the published Banking77 accuracy, 80.04
(docs/evaluation.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence

import numpy as np

__all__ = ["EXPERIMENTS", "SAMPLES_PER_LABEL", "SEED", "logistic_regression_scores", "undersample"]

#: MTEB's defaults for classification tasks.
EXPERIMENTS = 10
SAMPLES_PER_LABEL = 8
SEED = 42


def undersample(
    labels: Sequence[Hashable],
    *,
    experiments: int = EXPERIMENTS,
    samples_per_label: int = SAMPLES_PER_LABEL,
    seed: int = SEED,
) -> list[list[int]]:
    """The training rows of each experiment, as MTEB 1.x picks them (see the module doc).

    Args:
        labels: The label of each training row.
        experiments: Number of experiments.
        samples_per_label: Rows kept per label in each experiment (fewer where a label has fewer).
        seed: Seed of every shuffle.

    Returns:
        One list of row indices per experiment, in the shuffled order.

    Examples:
        >>> picks = undersample(["a", "b", "a", "b", "a"], experiments=2, samples_per_label=1)
        >>> [sorted({["a", "b", "a", "b", "a"][i] for i in rows}) for rows in picks]
        [['a', 'b'], ['a', 'b']]
    """
    if experiments < 1 or samples_per_label < 1:
        raise ValueError(
            f"experiments and samples_per_label must be positive, got {experiments} and {samples_per_label}"
        )
    order = np.arange(len(labels))
    picks: list[list[int]] = []
    for _ in range(experiments):
        np.random.RandomState(seed).shuffle(order)
        taken: dict[Hashable, int] = {}
        rows: list[int] = []
        for index in order.tolist():
            label = labels[index]
            if taken.get(label, 0) < samples_per_label:
                taken[label] = taken.get(label, 0) + 1
                rows.append(index)
        picks.append(rows)
    return picks


def logistic_regression_scores(
    train: np.ndarray,
    train_labels: Sequence[Hashable],
    test: np.ndarray,
    test_labels: Sequence[Hashable],
    *,
    max_iter: int = 100,
    seed: int = SEED,
) -> dict[str, float]:
    """Fit a logistic regression on ``train`` and score it on ``test``: accuracy and macro F1 (0-1).

    Examples:
        >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> logistic_regression_scores(x, ["a", "a", "b", "b"], x[::-1], ["b", "b", "a", "a"])
        {'accuracy': 1.0, 'f1': 1.0}
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    classifier = LogisticRegression(random_state=seed, max_iter=max_iter)
    with warnings.catch_warnings():
        # MTEB's 100 iterations often stop short of convergence; the published scores include that.
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(train, list(train_labels))
    predicted = classifier.predict(test)
    return {
        "accuracy": float(accuracy_score(list(test_labels), predicted)),
        "f1": float(f1_score(list(test_labels), predicted, average="macro")),
    }
