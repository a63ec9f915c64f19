"""MTEB adapter: :class:`InstructorMTEBModel`, an encoder for MTEB 2's evaluation harness.

Requires the ``[mteb]`` extra. MTEB calls the model with each task's metadata and the side of each
text (query or document); this adapter embeds it with the authors' instruction for that task and side,
taken from the presets shipped with this package for the model's own checkpoint size. Later MTEB versions
of a task (``STS22.v2``), its ``HardNegatives`` subset or its new name take the instructions of the task
the authors evaluated; a task without a preset gets the generic retrieval pair, with a warning.

:func:`beir_task` and :func:`sts_task` make MTEB tasks of a BEIR folder or an STS Benchmark folder on
disk, for offline runs (MTEB otherwise downloads its data from the Hugging Face Hub).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._adapter import resolve_encoder
from ._optional import require
from ._protocol import Encoder
from ._validation import check_bool, short
from .encoder import DEFAULT_MODEL
from .errors import UnknownPresetError
from .evaluation.datasets import load_retrieval, load_sts
from .instructions import GENERIC_RETRIEVAL, InstructionPair, get_preset
from .settings import EncoderSettings

_abs_encoder = require("mteb.models.abs_encoder", "mteb")
_model_meta = require("mteb.models.model_meta", "mteb")
_metadata = require("mteb.abstasks.task_metadata", "mteb")
_retrieval = require("mteb.abstasks.retrieval", "mteb")
_retrieval_loaders = require("mteb.abstasks.retrieval_dataset_loaders", "mteb")
_sts = require("mteb.abstasks.sts", "mteb")
_datasets = require("datasets", "mteb")

logger = logging.getLogger(__name__)

__all__ = ["InstructorMTEBModel", "beir_task", "sts_task"]

#: The instructions of one task: a pair, or one string for both sides (symmetric tasks).
Instructions = InstructionPair | str


class InstructorMTEBModel(_abs_encoder.AbsEncoder):  # type: ignore[misc, name-defined]
    """INSTRUCTOR embeddings for MTEB: each task and side gets the authors' instruction.

    Args:
        model_name: Hub name or local folder of the checkpoint.
        revision: The checkpoint's revision, recorded in MTEB's results (not used to load).
        device: ``"cpu"``, ``"cuda"``, ... or ``None`` (auto).
        instructions: Overrides by MTEB task name: an :class:`~instructor_integrations.instructions.InstructionPair`
            or one string for both sides.
        fallback: The pair for tasks with neither a preset nor an override (default: the generic
            retrieval pair; symmetric tasks take its document instruction).
        no_instructions: Embed plain texts (as MTEB's published scores of models without instructions,
            such as all-MiniLM-L6-v2, were made).
        name: The model's name in MTEB's results (default: the hub name, or ``local/<folder name>``).
        batch_size: Rows per forward pass.
        encoder: An encoder to use instead of the shared one (e.g. a ``RemoteEncoder``).
        **settings: Any other :class:`~instructor_integrations.settings.EncoderSettings` field
            (``precision``, ``max_seq_length``, ...).

    Attributes:
        instructions_used: ``(task name, side)`` -> the instruction sent, for every call so far
            (side is ``"query"``, ``"document"`` or ``"text"`` for symmetric tasks).

    Examples:
        >>> import mteb
        >>> from instructor_integrations.mteb import InstructorMTEBModel, beir_task
        >>> model = InstructorMTEBModel("tests/fixtures/tiny-instructor", device="cpu")
        >>> task = beir_task("tests/fixtures/mini-beir", name="SciFact")
        >>> result = mteb.evaluate(model, [task], cache=None, show_progress_bar=False)
        >>> from instructor_integrations.instructions import get_preset
        >>> model.instructions_used[("SciFact", "query")] == get_preset("SciFact", model.model_name).query
        True
    """

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        revision: str | None = None,
        *,
        device: str | None = None,
        instructions: Mapping[str, Instructions] | None = None,
        fallback: InstructionPair = GENERIC_RETRIEVAL,
        no_instructions: bool = False,
        name: str | None = None,
        batch_size: int | None = None,
        encoder: Encoder | None = None,
        **settings: Any,
    ) -> None:
        self.model_name, self.revision = model_name, revision
        self.settings = EncoderSettings(model_name, device=device, **settings)
        self.batch_size = batch_size
        self.overrides: dict[str, InstructionPair] = {}
        for task, given in (instructions or {}).items():
            if isinstance(given, str):
                given = InstructionPair(query=given, document=given)
            if not isinstance(given, InstructionPair):
                raise TypeError(f"instructions[{task!r}] must be an InstructionPair or a str, got {short(given)}")
            self.overrides[task] = given
        if not isinstance(fallback, InstructionPair):
            raise TypeError(f"fallback must be an InstructionPair, got {short(fallback)}")
        self.fallback = fallback
        self.no_instructions = bool(check_bool(no_instructions, "no_instructions"))
        self.name = name or (model_name if "/" in model_name and not Path(model_name).exists() else None)
        self._encoder = None if encoder is None else resolve_encoder(self.settings, encoder)
        self._meta: Any = None
        self.instructions_used: dict[tuple[str, str], str | None] = {}

    @property
    def encoder(self) -> Encoder:
        """The shared encoder behind this model (loaded on first use)."""
        if self._encoder is None:
            self._encoder = resolve_encoder(self.settings, None)
        return self._encoder

    def instruction_for(self, task_name: str, side: str) -> str | None:
        """The instruction a text of ``task_name`` gets: an override, the preset, else the fallback.

        ``None`` (plain text) for every task when the model was made with ``no_instructions=True``.

        Args:
            task_name: The MTEB task name, e.g. ``"SciFact"`` or ``"STS22.v2"``.
            side: ``"query"``, ``"document"``, or ``"text"`` (a symmetric task's one instruction).
        """
        if side not in ("query", "document", "text"):
            raise ValueError(f"side must be 'query', 'document' or 'text', got {side!r}")
        if self.no_instructions:
            return None
        pair = self.overrides.get(task_name)
        if pair is None:
            try:
                pair = get_preset(task_name, self.model_name).pair
            except UnknownPresetError:
                pair = self.fallback
                if (task_name, side) not in self.instructions_used:
                    logger.warning("MTEB task %s has no instruction preset: the fallback pair is used", task_name)
        return pair.query if side == "query" else pair.document

    def encode(
        self,
        inputs: Any,
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Embed MTEB's batches of texts with the instruction of their task and side (MTEB's encoder protocol)."""
        side = "text" if prompt_type is None else str(getattr(prompt_type, "value", prompt_type))
        instruction = self.instruction_for(task_metadata.name, side)
        self.instructions_used[(task_metadata.name, side)] = instruction
        texts = [text for batch in inputs for text in batch["text"]]
        batch_size = self.batch_size or kwargs.get("batch_size")
        return self.encoder.encode(texts, instruction, batch_size=batch_size, show_progress_bar=False)

    @property
    def mteb_model_meta(self) -> Any:
        """MTEB's description of the model (its name, size of vectors, cosine similarity, instructions used)."""
        if self._meta is None:
            name = self.name or f"local/{Path(self.model_name).name}"
            self._meta = _model_meta.ModelMeta(
                loader=None,
                name=name,
                revision=self.revision,
                release_date=None,
                languages=["eng-Latn"],
                n_parameters=None,
                memory_usage_mb=None,
                max_tokens=self.settings.max_seq_length or 512,
                embed_dim=self.encoder.embedding_dimension,
                license=None,
                open_weights=True,
                public_training_code="https://github.com/xlang-ai/instructor-embedding",
                public_training_data=None,
                framework=["Sentence Transformers", "PyTorch"],
                similarity_fn_name="cosine",
                use_instructions=not self.no_instructions,
                training_datasets=None,
            )
        return self._meta


def _task_metadata(name: str, kind: str, main_score: str, folder: Path) -> Any:
    return _metadata.TaskMetadata(
        type=kind,
        name=name,
        main_score=main_score,
        description=f"{name} read from {folder} (instructor_integrations.mteb, offline)",
        reference=None,
        dataset={"path": str(folder), "revision": "local"},
        category="t2t",
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        date=None,
        dialect=None,
        domains=None,
        task_subtypes=None,
        license=None,
        annotations_creators=None,
        modalities=["text"],
        sample_creation=None,
        bibtex_citation=None,
    )


def beir_task(folder: str | Path, *, name: str, split: str = "test") -> Any:
    """An MTEB retrieval task of the BEIR folder ``folder`` (``corpus.jsonl``, ``queries.jsonl``, ``qrels/``).

    Args:
        folder: The BEIR folder.
        name: The task's name, which chooses its instructions (e.g. ``"SciFact"``) and names its results.
        split: The qrels split to score (its file ``qrels/<split>.tsv``); MTEB reports it as ``test``.

    Returns:
        An MTEB ``AbsTaskRetrieval`` to pass to ``mteb.evaluate``.
    """
    path = Path(folder)

    class LocalRetrieval(_retrieval.AbsTaskRetrieval):  # type: ignore[misc, name-defined]
        metadata = _task_metadata(name, "Retrieval", "ndcg_at_10", path)

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            data = load_retrieval(path, split=split)
            queries = _datasets.Dataset.from_list([{"id": k, "text": v} for k, v in data.queries.items()])
            corpus = _datasets.Dataset.from_list([{"id": k, "text": v} for k, v in data.corpus.items()])
            one = _retrieval_loaders.RetrievalSplitData(
                queries=queries, corpus=corpus, relevant_docs=data.qrels, top_ranked=None
            )
            self.dataset = {"default": {"test": one}}
            self.data_loaded = True

    return LocalRetrieval()


def sts_task(folder: str | Path, *, name: str = "STSBenchmark", split: str = "test") -> Any:
    """An MTEB STS task of the STS Benchmark folder ``folder`` (``sts-<split>.csv``; gold scores 0-5).

    Returns:
        An MTEB ``AbsTaskSTS`` to pass to ``mteb.evaluate``.
    """
    path = Path(folder)

    class LocalSTS(_sts.AbsTaskSTS):  # type: ignore[misc, name-defined]
        metadata = _task_metadata(name, "STS", "cosine_spearman", path)
        min_score = 0
        max_score = 5

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            data = load_sts(path, split=split)
            rows = {"sentence1": data.first, "sentence2": data.second, "score": list(map(float, data.scores))}
            self.dataset = _datasets.DatasetDict({"test": _datasets.Dataset.from_dict(rows)})
            self.data_loaded = True

    return LocalSTS()
