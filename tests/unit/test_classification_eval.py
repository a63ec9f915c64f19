"""Classification in the evaluation harness: MTEB 1.x's sampling, the classifier's scores, the loader."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from instructor_integrations.evaluation.classification import logistic_regression_scores, undersample
from instructor_integrations.evaluation.datasets import detect_kind, load_classification

from ..conftest import FIXTURES

MINI = FIXTURES / "mini-classification"


def _mteb_picks(labels: list[str], experiments: int, samples_per_label: int) -> list[list[int]]:
    """MTEB 1.x as its code runs, with NumPy's global generator.

    The task seeds the global generator with 42 once; each experiment shuffles the index array in place
    with it, keeps the first ``samples_per_label`` rows of each label, and then creates its evaluator,
    whose constructor seeds the global generator with 42 again.
    """
    saved = np.random.get_state()
    try:
        np.random.seed(42)  # AbsTask.__init__
        idxs = np.arange(len(labels))
        picks = []
        for _ in range(experiments):
            np.random.shuffle(idxs)  # AbsTaskClassification._undersample_data
            counter: defaultdict[str, int] = defaultdict(int)
            rows = []
            for i in idxs:
                if counter[labels[i]] < samples_per_label:
                    rows.append(int(i))
                    counter[labels[i]] += 1
            picks.append(rows)
            np.random.seed(42)  # Evaluator.__init__ of this experiment's evaluator
        return picks
    finally:
        np.random.set_state(saved)


@pytest.fixture
def labels() -> list[str]:
    rng = np.random.default_rng(7)
    # Unbalanced, with two labels rarer than eight rows.
    names = [f"label{i}" for i in range(9)]
    weights = np.array([30, 25, 20, 15, 12, 10, 9, 5, 3], dtype=float)
    return [str(x) for x in rng.choice(names, size=400, p=weights / weights.sum())]


def test_undersample_is_mtebs_global_generator_sequence(labels: list[str]) -> None:
    assert undersample(labels) == _mteb_picks(labels, 10, 8)
    assert undersample(labels, experiments=3, samples_per_label=2) == _mteb_picks(labels, 3, 2)


def test_undersample_keeps_at_most_n_per_label_and_varies_between_experiments(labels: list[str]) -> None:
    available = Counter(labels)
    picks = undersample(labels)
    assert len(picks) == 10
    for rows in picks:
        assert len(rows) == len(set(rows))
        assert Counter(labels[i] for i in rows) == {label: min(8, n) for label, n in available.items()}
    assert len({tuple(sorted(rows)) for rows in picks}) == 10


def test_undersample_does_not_touch_the_global_generator(labels: list[str]) -> None:
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    undersample(labels)
    assert np.random.random() == expected


@pytest.mark.parametrize(("experiments", "per_label"), [(0, 8), (10, 0), (-1, 8)])
def test_undersample_rejects_non_positive_counts(experiments: int, per_label: int) -> None:
    with pytest.raises(ValueError, match=f"got {experiments} and {per_label}"):
        undersample(["a", "b"], experiments=experiments, samples_per_label=per_label)


def test_logistic_regression_scores_count_the_mistakes() -> None:
    rng = np.random.default_rng(0)
    centres = {"a": (5.0, 0.0), "b": (0.0, 5.0), "c": (-5.0, -5.0)}
    train = np.concatenate([rng.normal(c, 0.3, size=(8, 2)) for c in centres.values()])
    train_labels = [label for label in centres for _ in range(8)]
    # Twelve test points at the three centres, three from each of a, b and c labelled as such, and
    # three that sit at c's centre but are labelled "a": the classifier says "c" for them.
    test = np.array([centres[k] for k in "aaabbbccc"] + [centres["c"]] * 3)
    test_labels = list("aaabbbccc") + ["a"] * 3
    scores = logistic_regression_scores(train, train_labels, test, test_labels)
    assert scores["accuracy"] == pytest.approx(9 / 12)
    # Per class: a precision 3/3 recall 3/6 -> F1 2/3; b 1; c precision 3/6 recall 3/3 -> F1 2/3.
    assert scores["f1"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)


def test_loader_reads_text_and_category() -> None:
    data = load_classification(MINI)
    assert detect_kind(MINI) == "classification"
    assert len(data.train_texts) == len(data.train_labels) == 30
    assert Counter(data.test_labels) == {"card_arrival": 4, "exchange_rate": 4, "lost_or_stolen_card": 4}
    assert data.train_texts[9] == "It has been ten days, where is my card?"  # a quoted comma


def test_loader_accepts_a_label_column_and_a_byte_order_mark(tmp_path: Path) -> None:
    for name in ("train.csv", "test.csv"):
        (tmp_path / name).write_text("label,text\n3,hello\n4,world\n", encoding="utf-8-sig")
    data = load_classification(tmp_path)
    assert data.train_labels == ["3", "4"] and data.test_texts == ["hello", "world"]


@pytest.mark.parametrize(
    ("train", "test", "message"),
    [
        ("sentence,category\na,x\n", "text,category\na,x\n", "needs a header with a 'text' column"),
        ("text,category\na,x\n", "text,category\nb,y\n", "never occur in train.csv, e.g. 'y'"),
        ("text,category\na,x\n,x\n", "text,category\na,x\n", "train.csv:3: empty text or category"),
        ("text,category\n", "text,category\na,x\n", "train.csv: no rows"),
    ],
)
def test_loader_names_what_is_wrong(tmp_path: Path, train: str, test: str, message: str) -> None:
    (tmp_path / "train.csv").write_text(train, encoding="utf-8")
    (tmp_path / "test.csv").write_text(test, encoding="utf-8")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_classification(tmp_path)


def test_a_folder_with_only_train_csv_is_not_a_classification_set(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("text,category\na,x\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=r"classification folder \(train.csv and test.csv\)"):
        detect_kind(tmp_path)
