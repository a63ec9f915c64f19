"""Fine-tune INSTRUCTOR the paper's way on today's sentence-transformers (extra ``[train]``).

* :func:`finetune` trains a checkpoint on your rows with the INSTRUCTOR objective, scores it before
  and after on data it never trained on, and saves a checkpoint every door of this package loads;
* :func:`load_examples` reads the formats users have (BEIR, JSONL, MEDI, LlamaIndex's QA dataset);
* :class:`InstructorLoss` is the paper's loss for ``SentenceTransformerTrainer``;
* :func:`mine_hard_negatives` finds hard negatives with the base model, positives excluded;
* :func:`~.distributed.finetune_with_ray` runs the same training data-parallel on Ray Train workers.

Examples:
    >>> from instructor_integrations.training import finetune  # doctest: +SKIP
    >>> finetune("hkunlp/instructor-base", "data/scifact", output="scifact-instructor", task="SciFact",
    ...          dev_fraction=0.1, test_split="test")  # doctest: +SKIP
"""

from __future__ import annotations

from .data import TrainingExample, group_by_task, load_examples
from .loss import CachedInstructorLoss, InstructorLoss, instructor_loss
from .mining import mine_hard_negatives
from .trainer import FinetuneResult, finetune, training_datasets

__all__ = [
    "CachedInstructorLoss",
    "FinetuneResult",
    "InstructorLoss",
    "TrainingExample",
    "finetune",
    "group_by_task",
    "instructor_loss",
    "load_examples",
    "mine_hard_negatives",
    "training_datasets",
]
