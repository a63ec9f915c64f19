"""``finetune``: train an INSTRUCTOR (or any sentence-transformers model, given INSTRUCTOR pooling) the paper's way.

The run, in order:

1. the rows are read and checked (:func:`~.data.load_examples`): a bad row fails here, before any step;
2. a dev set is set aside (a BEIR split, or a fraction of the training queries) and, when asked, a
   test split is loaded: it is only ever scored, never used to choose;
3. the base model is loaded by an :class:`~instructor_integrations.encoder.InstructorEncoder` of its
   own (``precision="exact"``), which decides its pooling and its instruction rules once;
4. optional hard negatives are mined with that encoder (:func:`~.mining.mine_hard_negatives`);
5. the dev and test scores *before* training are taken with the package's harness;
6. sentence-transformers' ``SentenceTransformerTrainer`` trains ``encoder.model`` in place: one
   dataset per task (:func:`~.data.group_by_task`) so that every batch holds one task, each column's
   instruction a prompt (the collator passes its length, so the pooling leaves the instruction out as
   at inference), :class:`~.loss.InstructorLoss`, no duplicate texts in a batch; checkpoints are kept
   by the dev nDCG@10, with optional early stopping; a killed run resumes from its last checkpoint;
7. the best model is saved by ``encoder.save`` (this package's marker, the instructions as named
   prompts), the scores *after* are taken, and both go into ``finetune_results.json`` and the model card.

Examples:
    >>> import tempfile
    >>> rows = [{"query": f"question {i}", "positive": f"answer {i}"} for i in range(8)]
    >>> result = finetune("tests/fixtures/tiny-instructor", rows, output=tempfile.mkdtemp(), max_steps=2,
    ...                   batch_size=4, device="cpu", progress=False)
    >>> result.steps
    2
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator
from transformers import TrainerCallback

from .._optional import require
from .._validation import check_positive_int, short
from ..encoder import InstructorEncoder
from ..evaluation import retrieval_metrics
from ..evaluation.datasets import RetrievalData, load_retrieval
from .data import TrainingExample, group_by_task, load_examples
from .loss import DEFAULT_TEMPERATURE, CachedInstructorLoss, InstructorLoss
from .mining import mine_hard_negatives

__all__ = ["FinetuneResult", "finetune", "training_datasets"]

logger = logging.getLogger(__name__)

#: The file a run writes into its output folder: settings, counts and the scores before and after.
RESULTS_FILE = "finetune_results.json"
_CHECKPOINTS = "checkpoints"


@dataclass
class FinetuneResult:
    """What a :func:`finetune` run did (also written to ``finetune_results.json`` in the output folder).

    Attributes:
        output: The saved model's folder.
        base_model: The model it started from.
        steps: Optimizer steps taken (all runs together, when resumed).
        seconds: Training time of this run (mining and evaluation not included).
        train_rows: Training rows, per task group.
        dev: ``{"before": metrics, "after": metrics}`` on the dev set (empty without one).
        test: The same on the test split (empty without one).
        settings: The run's settings (instructions, loss, learning rate...).
    """

    output: str
    base_model: str
    steps: int
    seconds: float
    train_rows: dict[str, int]
    dev: dict[str, dict[str, float]] = field(default_factory=dict)
    test: dict[str, dict[str, float]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON values."""
        return asdict(self)


def training_datasets(
    encoder: InstructorEncoder, examples: Sequence[TrainingExample]
) -> tuple[Any, dict[str, dict[str, str]]]:
    """The rows as sentence-transformers training data: a ``DatasetDict`` (one dataset per group) and its prompts.

    Columns: ``query``, ``positive``, then ``negative_1``... Each text is the part of the reference's
    input after the instruction, and each column's instruction is its prompt
    (:meth:`~instructor_integrations.encoder.InstructorEncoder.as_prompt`), so the collator's
    ``prompt + text`` is exactly the input the encoder embeds, and its prompt length the tokens the
    pooling leaves out.

    Examples:
        >>> from instructor_integrations import InstructorEncoder
        >>> encoder = InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
        >>> rows = [TrainingExample("tides?", "The moon.", (), "Represent the question: ", "Represent the fact: ")]
        >>> data, prompts = training_datasets(encoder, rows)
        >>> data["default"][0], prompts["default"]["query"]
        ({'query': ' tides?', 'positive': ' The moon.'}, 'Represent the question:')
    """
    datasets = require("datasets", "train")
    groups: dict[str, Any] = {}
    prompts: dict[str, dict[str, str]] = {}
    for name, members in group_by_task(examples).items():
        first = members[0]
        sides = [("query", first.query_instruction), ("positive", first.document_instruction)]
        sides += [(f"negative_{k + 1}", first.document_instruction) for k in range(len(first.negatives))]
        columns: dict[str, list[str]] = {column: [] for column, _ in sides}
        column_prompts: dict[str, str] = {}
        for row in members:
            texts = [row.query, row.positive, *row.negatives]
            for (column, instruction), text in zip(sides, texts, strict=True):
                prompt, body = encoder.as_prompt(instruction, text)  # the prompt is the instruction's alone
                column_prompts[column] = prompt
                columns[column].append(body)
        prompts[name] = {column: prompt for column, prompt in column_prompts.items() if prompt}
        groups[name] = datasets.Dataset.from_dict(columns)
    return datasets.DatasetDict(groups), prompts


def finetune(
    model: str,
    data: str | Path | Any,
    *,
    output: str | Path,
    split: str = "train",
    dev_split: str | None = None,
    dev_fraction: float | None = None,
    test_split: str | None = None,
    task: str | None = None,
    query_instruction: str | None = None,
    document_instruction: str | None = None,
    epochs: float = 1.0,
    max_steps: int | None = None,
    batch_size: int = 32,
    learning_rate: float = 2e-5,
    warmup_ratio: float = 0.1,
    temperature: float = DEFAULT_TEMPERATURE,
    bidirectional: bool = True,
    in_batch_positives: bool | None = None,
    cached_mini_batch_size: int | None = None,
    hard_negatives: int = 0,
    mining_margin: float | None = None,
    loss: Callable[[Any], Any] | None = None,
    eval_steps: int | None = None,
    early_stopping_patience: int | None = None,
    resume: bool = False,
    device: str | None = None,
    max_seq_length: int | None = None,
    bf16: bool = False,
    gradient_checkpointing: bool = False,
    lora: bool | dict[str, Any] = False,
    seed: int = 0,
    progress: bool | None = None,
    callbacks: Sequence[Any] = (),
) -> FinetuneResult:
    """Fine-tune ``model`` on ``data`` with the INSTRUCTOR objective; save it to ``output``; score it before and after.

    Args:
        model: The base checkpoint: an INSTRUCTOR, or any sentence-transformers model (which is given
            INSTRUCTOR pooling: the instruction tokens are left out of the mean).
        data: A BEIR folder, a JSONL / JSON file, a ``datasets.Dataset`` or a list of dicts (see
            :mod:`.data`).
        output: The folder of the saved model (its ``checkpoints/`` subfolder holds the run's checkpoints).
        split: The qrels split of a BEIR folder to train on.
        dev_split: A BEIR folder's qrels split to choose checkpoints by (dev nDCG@10).
        dev_fraction: Otherwise, the fraction of the training queries held out as the dev set.
        test_split: A BEIR folder's qrels split scored before and after, never used to choose.
        task: The task preset whose instructions rows without their own get (e.g. ``"SciFact"``).
        query_instruction: The query instruction of rows without one.
        document_instruction: The document instruction of rows without one.
        epochs: Passes over the training rows.
        max_steps: Stop after this many steps (wins over ``epochs``).
        batch_size: Rows per batch (each row: a query, a positive and its negatives).
        learning_rate: Peak learning rate (the authors': 2e-5).
        warmup_ratio: Fraction of the steps of linear warm-up (the authors': 0.1).
        temperature: The loss's temperature (the authors' command: 0.1).
        bidirectional: Add the documents-to-query direction to the loss.
        in_batch_positives: Count the other rows' positives as negatives of each query (``None``: only
            in batches without hard negatives; see :mod:`.loss`).
        cached_mini_batch_size: Use :class:`~.loss.CachedInstructorLoss` (GradCache), embedding this many
            rows at a time: a large ``batch_size`` in small memory, for the price of a second forward pass.
        hard_negatives: Mine this many hard negatives per row with the base model (0: none beyond the rows').
        mining_margin: A mined negative scores at least this much below the row's positive (cosine).
        loss: ``model -> loss module`` to use instead (any sentence-transformers loss).
        eval_steps: Score the dev set (and keep a checkpoint) every this many steps (default: once per
            epoch, or 4 times in a run of ``max_steps``).
        early_stopping_patience: Stop after this many dev scores without a better one.
        resume: Continue from the last checkpoint in ``output/checkpoints`` (a fresh start when none).
        device: ``"cpu"``, ``"cuda"``... (default: the best available).
        max_seq_length: Token limit per input (default: 512, the reference's).
        bf16: Train in bfloat16 autocast (GPUs).
        gradient_checkpointing: Recompute activations in the backward pass instead of keeping them
            (less memory for the large sizes, about a third more compute; the same gradients).
        lora: Train a LoRA adapter instead of every weight: ``True`` or a ``peft.LoraConfig`` keyword
            dict (extra ``[lora]``: peft 0.22 or later, which transformers 5 needs).
        seed: Seed of the dev split, the batch order and the initialisation of new weights.
        progress: Show a progress bar with the loss (``None``: on a terminal only).
        callbacks: More ``transformers.TrainerCallback`` objects.

    Returns:
        A :class:`FinetuneResult`.

    Raises:
        SourceError: A missing file or malformed row (named by file and line), before any step.
        ValueError: A bad setting (named), or a dev / test split without a BEIR folder.
    """
    _check(epochs, batch_size, learning_rate, warmup_ratio, hard_negatives, dev_fraction, eval_steps, max_steps)
    started = time.perf_counter()
    out = Path(output).expanduser()
    folder = Path(data) if isinstance(data, (str, Path)) and Path(data).is_dir() else None
    for name, value in (("dev_split", dev_split), ("test_split", test_split)):
        if value is not None and folder is None:
            raise ValueError(f"{name}={value!r} needs a BEIR folder as data; use dev_fraction for {short(data)}")
    rows = load_examples(
        data, split=split, task=task, query_instruction=query_instruction,
        document_instruction=document_instruction, model=model,
    )  # fmt: skip
    corpus = list(load_retrieval(folder, split=split).corpus.values()) if folder is not None else None
    rows, dev = _dev_set(rows, folder, corpus, dev_split, dev_fraction, seed)
    test = load_retrieval(folder, split=test_split) if folder is not None and test_split else None
    if test is not None and (shared := {row.query for row in rows} & set(test.queries.values())):
        raise ValueError(f"the test split {test_split!r} shares {len(shared)} queries with the training rows")
    encoder = _training_encoder(model, device, max_seq_length)
    if hard_negatives:
        rows = mine_hard_negatives(encoder, rows, corpus=corpus, num_negatives=hard_negatives, margin=mining_margin)
    if lora:
        _add_lora(encoder.model, lora)
    pair = (rows[0].query_instruction, rows[0].document_instruction)
    rank, world = _process_rank()
    scores: dict[str, dict[str, dict[str, float]]] = {"dev": {}, "test": {}}
    held_out = {"dev": dev, "test": test}
    if rank == 0:  # in a data-parallel run (torchrun, Ray Train) the first process scores and saves
        _score(scores, "before", encoder, held_out, pair, batch_size)
    train_data, prompts = training_datasets(encoder, rows)
    loss_module = _loss_module(
        encoder.model, loss, cached_mini_batch_size, temperature, bidirectional, in_batch_positives
    )
    trainer = _trainer(
        encoder, train_data, prompts, out / _CHECKPOINTS, dev, pair, loss=loss_module,
        epochs=epochs, max_steps=max_steps, batch_size=batch_size, learning_rate=learning_rate,
        warmup_ratio=warmup_ratio, eval_steps=eval_steps, patience=early_stopping_patience, bf16=bf16,
        gradient_checkpointing=gradient_checkpointing, seed=seed, progress=progress, callbacks=callbacks,
    )  # fmt: skip
    train_started = time.perf_counter()
    trainer.train(resume_from_checkpoint=_last_checkpoint(out / _CHECKPOINTS) if resume else None)
    seconds = time.perf_counter() - train_started
    encoder.model.eval()
    if rank == 0:
        encoder.model.prompts = {"query": pair[0] or "", "document": pair[1] or ""}
        encoder.save(out)
        _score(scores, "after", encoder, held_out, pair, batch_size)
    result = FinetuneResult(
        output=str(out),
        base_model=model,
        steps=int(trainer.state.global_step),
        seconds=round(seconds, 1),
        train_rows={name: len(group) for name, group in group_by_task(rows).items()},
        dev=scores["dev"],
        test=scores["test"],
        settings={
            "query_instruction": pair[0], "document_instruction": pair[1], "task": task,
            "loss": type(loss_module).__name__,
            "temperature": temperature, "bidirectional": bidirectional,
            "in_batch_positives": in_batch_positives, "epochs": epochs, "max_steps": max_steps,
            "batch_size": batch_size, "learning_rate": learning_rate, "warmup_ratio": warmup_ratio,
            "hard_negatives": hard_negatives, "lora": bool(lora), "device": str(encoder.device),
            "gradient_checkpointing": gradient_checkpointing,
            "max_seq_length": encoder.max_seq_length, "seed": seed, "processes": world,
        },
    )  # fmt: skip
    if rank == 0:
        (out / RESULTS_FILE).write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
        _add_to_model_card(out, result)
    logger.info(
        "Fine-tuned %s in %.1fs (%d steps), saved to %s", model, time.perf_counter() - started, result.steps, out
    )
    return result


# ---------------------------------------------------------------------------------------------- pieces
def _process_rank() -> tuple[int, int]:
    """This process's rank and the number of processes of a data-parallel run (``(0, 1)`` alone)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():  # Ray Train sets the group up before the run
        return dist.get_rank(), dist.get_world_size()
    # torchrun / accelerate launch: the trainer sets the group up later; the launcher's variables say it now.
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _loss_module(
    model: Any,
    loss: Callable[[Any], Any] | None,
    cached_mini_batch_size: int | None,
    temperature: float,
    bidirectional: bool,
    in_batch_positives: bool | None,
) -> Any:
    """The user's loss, else the paper's (cached by GradCache when a mini-batch size is given)."""
    if loss is not None:
        return loss(model)
    if cached_mini_batch_size is not None:
        return CachedInstructorLoss(
            model, mini_batch_size=cached_mini_batch_size, temperature=temperature,
            bidirectional=bidirectional, in_batch_positives=in_batch_positives,
        )  # fmt: skip
    return InstructorLoss(
        model, temperature=temperature, bidirectional=bidirectional, in_batch_positives=in_batch_positives
    )


def _score(
    scores: dict[str, dict[str, dict[str, float]]],
    when: str,
    encoder: InstructorEncoder,
    held_out: dict[str, RetrievalData | None],
    pair: tuple[str | None, str | None],
    batch_size: int,
) -> None:
    """Score each held-out set with the package's harness, into ``scores[name][when]``.

    The dev and test sets of one BEIR folder share its corpus: its texts are embedded once for both.
    """
    sets = {name: held for name, held in held_out.items() if held is not None}
    known = None
    if len(sets) > 1:
        texts = list(dict.fromkeys(text for held in sets.values() for text in held.corpus.values()))
        known = dict(zip(texts, encoder.encode(texts, pair[1], batch_size=batch_size), strict=True))
    for name, held in sets.items():
        scores[name][when] = retrieval_metrics(encoder, held, *pair, batch_size=batch_size, document_vectors=known)
        logger.info("%s %s training: %s", name, when, scores[name][when])


def _check(
    epochs: float,
    batch_size: int,
    learning_rate: float,
    warmup_ratio: float,
    hard_negatives: int,
    dev_fraction: float | None,
    eval_steps: int | None,
    max_steps: int | None,
) -> None:
    check_positive_int(batch_size, "batch_size")
    check_positive_int(eval_steps, "eval_steps", allow_none=True)
    check_positive_int(max_steps, "max_steps", allow_none=True)
    for name, value in (("epochs", epochs), ("learning_rate", learning_rate)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a number > 0, got {short(value)}")
    if isinstance(warmup_ratio, bool) or not isinstance(warmup_ratio, (int, float)) or not 0 <= warmup_ratio < 1:
        raise ValueError(f"warmup_ratio must be a number in [0, 1), got {short(warmup_ratio)}")
    if isinstance(hard_negatives, bool) or not isinstance(hard_negatives, int) or hard_negatives < 0:
        raise ValueError(f"hard_negatives must be an int >= 0, got {short(hard_negatives)}")
    if dev_fraction is not None and not (isinstance(dev_fraction, float) and 0.0 < dev_fraction < 1.0):
        raise ValueError(f"dev_fraction must be a float between 0 and 1, got {short(dev_fraction)}")


def _training_encoder(model: str, device: str | None, max_seq_length: int | None) -> InstructorEncoder:
    """An encoder of the base model that only this run uses (never the shared ``get_encoder`` cache).

    An INSTRUCTOR keeps the pooling its checkpoint says; any other model is given INSTRUCTOR pooling,
    which is what training it with instructions means.
    """
    return InstructorEncoder(
        model, device=device, precision="exact", max_seq_length=max_seq_length, instructor_pooling=True
    )


def _dev_set(
    rows: list[TrainingExample],
    folder: Path | None,
    corpus: list[str] | None,
    dev_split: str | None,
    dev_fraction: float | None,
    seed: int,
) -> tuple[list[TrainingExample], RetrievalData | None]:
    """The training rows left and the dev set: a BEIR split, or the rows of a fraction of the queries."""
    if folder is not None and dev_split is not None:
        dev = load_retrieval(folder, split=dev_split)
        overlap = {row.query for row in rows} & set(dev.queries.values())
        if overlap:
            raise ValueError(f"the dev split {dev_split!r} shares {len(overlap)} queries with the training rows")
        return rows, dev
    if dev_fraction is None:
        return rows, None
    queries = sorted({row.query for row in rows})
    random.Random(seed).shuffle(queries)
    held = set(queries[: max(1, round(len(queries) * dev_fraction))])
    if len(held) == len(queries):
        raise ValueError(f"dev_fraction={dev_fraction} leaves no training query ({len(queries)} in all)")
    documents = list(dict.fromkeys([*(corpus or []), *(t for row in rows for t in (row.positive, *row.negatives))]))
    doc_ids = {text: f"d{i}" for i, text in enumerate(documents)}
    query_ids = {text: f"q{i}" for i, text in enumerate(sorted(held))}
    qrels: dict[str, dict[str, int]] = {}
    for row in rows:
        if row.query in held:
            qrels.setdefault(query_ids[row.query], {})[doc_ids[row.positive]] = 1
    dev = RetrievalData(
        corpus={i: text for text, i in doc_ids.items()}, queries={i: text for text, i in query_ids.items()}, qrels=qrels
    )
    kept = [row for row in rows if row.query not in held]
    logger.info("Dev set: %d of %d queries held out (%d training rows left)", len(held), len(queries), len(kept))
    return kept, dev


def _last_checkpoint(folder: Path) -> str | None:
    """The newest ``checkpoint-N`` folder, or ``None`` (a fresh start) when the run never saved one."""
    candidates = [path for path in folder.glob("checkpoint-*") if path.is_dir() and path.name.split("-")[-1].isdigit()]
    if not candidates:
        logger.info("No checkpoint in %s: training starts from the base model", folder)
        return None
    last = max(candidates, key=lambda path: int(path.name.split("-")[-1]))
    logger.info("Resuming from %s", last)
    return str(last)


def _add_lora(model: Any, lora: bool | dict[str, Any]) -> None:
    peft = require("peft", "lora")
    options = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "task_type": peft.TaskType.FEATURE_EXTRACTION}
    options.update(lora if isinstance(lora, dict) else {})
    model.add_adapter(peft.LoraConfig(**options))


class _LogCallback(TrainerCallback):  # type: ignore[misc]
    """Training logs (loss, learning rate, dev scores) to this module's logger, never to stdout."""

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs:
            shown = {key: round(value, 5) if isinstance(value, float) else value for key, value in logs.items()}
            logger.info("step %d: %s", state.global_step, shown)


class _DevEvaluator(SentenceEvaluator):  # type: ignore[misc]
    """Dev nDCG@10, recall@100 and MRR@10 of the model in training, by the package's harness (dropout off)."""

    def __init__(
        self, encoder: InstructorEncoder, dev: RetrievalData, pair: tuple[str | None, str | None], batch_size: int
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.encoder, self.dev, self.pair, self.batch_size = encoder, dev, pair, batch_size
        self.primary_metric = "dev_ndcg@10"
        self.greater_is_better = True

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        training = model.training
        model.eval()
        try:
            metrics = retrieval_metrics(self.encoder, self.dev, *self.pair, batch_size=self.batch_size)
        finally:
            model.train(training)
        logger.info("dev at step %d: %s", steps, metrics)
        return {f"dev_{name}": value for name, value in metrics.items()}


def _trainer(
    encoder: InstructorEncoder,
    train_data: Any,
    prompts: dict[str, dict[str, str]],
    checkpoints: Path,
    dev: RetrievalData | None,
    pair: tuple[str | None, str | None],
    *,
    loss: Any,
    epochs: float,
    max_steps: int | None,
    batch_size: int,
    learning_rate: float,
    warmup_ratio: float,
    eval_steps: int | None,
    patience: int | None,
    bf16: bool,
    gradient_checkpointing: bool,
    seed: int,
    progress: bool | None,
    callbacks: Sequence[Any],
) -> Any:
    """sentence-transformers' trainer over ``encoder.model``, one task per batch, checkpoints by the dev score."""
    require("accelerate", "train")
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        MultiDatasetBatchSamplers,
        SentenceTransformerTrainingArguments,
    )
    from transformers import EarlyStoppingCallback
    from transformers.trainer_callback import PrinterCallback

    rows = sum(len(part) for part in train_data.values())
    steps_per_epoch = max(1, sum(-(-len(part) // batch_size) for part in train_data.values()))
    total = max_steps or max(1, round(steps_per_epoch * epochs))
    every = eval_steps or (max(1, total // 4) if max_steps else steps_per_epoch)
    show = sys.stderr.isatty() if progress is None else progress
    args = SentenceTransformerTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=epochs,
        max_steps=max_steps or -1,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=float(warmup_ratio),  # transformers 5: a float below 1 is the share of the steps
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        multi_dataset_batch_sampler=MultiDatasetBatchSamplers.PROPORTIONAL,
        prompts=prompts,
        eval_strategy="steps" if dev is not None else "no",
        eval_steps=every,
        save_strategy="steps",
        save_steps=every,
        save_total_limit=2,
        load_best_model_at_end=dev is not None,
        metric_for_best_model="eval_dev_ndcg@10" if dev is not None else None,
        greater_is_better=True if dev is not None else None,
        logging_steps=max(1, min(every, 10)),
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=encoder.device.type == "cpu",
        bf16=bf16,
        activation_checkpointing=gradient_checkpointing,
        disable_tqdm=not show,
        dataloader_drop_last=False,
    )
    extra: list[Any] = [_LogCallback(), *callbacks]
    if patience is not None and dev is not None:
        extra.append(EarlyStoppingCallback(early_stopping_patience=patience))
    trainer = SentenceTransformerTrainer(
        model=encoder.model,
        args=args,
        train_dataset=train_data,
        loss=loss,
        evaluator=_DevEvaluator(encoder, dev, pair, batch_size) if dev is not None else None,
        callbacks=extra,
    )
    trainer.remove_callback(PrinterCallback)  # it prints the logs to stdout; ours go to the logger
    logger.info("Training on %d rows in %d task group(s), %d steps", rows, len(train_data), total)
    return trainer


def _add_to_model_card(folder: Path, result: FinetuneResult) -> None:
    """Append the run's record (base model, rows, instructions, loss, steps, scores) to the model card."""
    card = folder / "README.md"
    lines = [
        "",
        "## Fine-tuned with instructor-integrations",
        "",
        f"- Base model: `{result.base_model}`",
        f"- Training rows: {sum(result.train_rows.values())} in {len(result.train_rows)} task group(s)",
        f"- Query instruction: `{result.settings['query_instruction']}`",
        f"- Document instruction: `{result.settings['document_instruction']}`",
        f"- Loss: {result.settings['loss']} (temperature {result.settings['temperature']}), "
        f"{result.steps} steps, batch size {result.settings['batch_size']}, "
        f"learning rate {result.settings['learning_rate']}",
        "",
    ]
    for name, scores in (("dev", result.dev), ("test", result.test)):
        if scores.get("before") and scores.get("after"):
            lines += [f"| {name} | before | after |", "| --- | --- | --- |"]
            lines += [
                f"| {metric} | {scores['before'][metric]:.2f} | {scores['after'][metric]:.2f} |"
                for metric in scores["before"]
            ]
            lines.append("")
    lines.append(f"Load it with `InstructorEncoder({str(folder)!r})`; the full record is in `{RESULTS_FILE}`.")
    existing = card.read_text(encoding="utf-8") if card.exists() else ""
    card.write_text(existing.rstrip("\n") + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
