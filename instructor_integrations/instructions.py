"""INSTRUCTOR instructions: the paper's template and the authors' per-dataset presets.

The template (Su et al., 2023) is ``"Represent the [domain] [text_type] for [task_objective]:"``;
``domain`` and ``task_objective`` are optional, ``text_type`` is required. Symmetric tasks (STS,
clustering, classification) use one instruction for every text; asymmetric tasks (retrieval,
reranking) use one for queries and one for documents.

Presets are the instructions the authors used to evaluate each checkpoint on each MTEB dataset
(67 tasks x instructor-base/large/xl), shipped as package data, strings kept exactly as the authors
wrote them (trailing spaces, typos and all).

Examples:
    >>> from instructor_integrations.instructions import build_instruction, get_preset
    >>> build_instruction("question", domain="Wikipedia", objective="retrieving supporting documents")
    'Represent the Wikipedia question for retrieving supporting documents: '
    >>> get_preset("SciFact", "hkunlp/instructor-large").query
    'Represent a Scientific query for retrieving a supporting passage; '
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ._checkpoint import DEFAULT_PRESET_MODEL, INSTRUCTOR_HUB_NAMES, detect_checkpoint
from ._validation import short
from .errors import UnknownPresetError

__all__ = [
    "DEFAULT_PRESET_MODEL",
    "GENERIC_RETRIEVAL",
    "PRESET_MODELS",
    "InstructionPair",
    "TaskPreset",
    "build_instruction",
    "build_pair",
    "get_preset",
    "list_presets",
    "preset_model_for",
    "resolve_task",
]

PRESET_MODELS = INSTRUCTOR_HUB_NAMES
_CATEGORY_SUFFIXES = ("retrieval", "classification", "clustering", "reranking", "summarization")


@dataclass(frozen=True)
class InstructionPair:
    """A query instruction and a document instruction for an asymmetric task.

    Examples:
        >>> pair = InstructionPair(query="Represent the question: ", document="Represent the passage: ")
        >>> pair.query
        'Represent the question: '
    """

    query: str
    document: str


#: The authors' generic retrieval pair (their MSMARCO instructions for instructor-large).
GENERIC_RETRIEVAL = InstructionPair(
    query="Represent the question for retrieving supporting documents: ",
    document="Represent the document for retrieval: ",
)


@dataclass(frozen=True)
class TaskPreset:
    """The authors' instruction(s) for one dataset and checkpoint.

    Attributes:
        name: The MTEB task name, e.g. ``"SciFact"``.
        category: ``retrieval``, ``reranking``, ``classification``, ``clustering``, ``sts``,
            ``pair_classification`` or ``summarization``.
        model: The checkpoint whose instruction set this is.
        query: Instruction for queries (for symmetric tasks, the one instruction).
        document: Instruction for documents (for symmetric tasks, the one instruction).
        source: File and line in the authors' repository.

    Examples:
        >>> preset = get_preset("STSBenchmark")
        >>> preset.symmetric, preset.query == preset.document
        (True, True)
    """

    name: str
    category: str
    model: str
    query: str
    document: str
    source: str

    @property
    def symmetric(self) -> bool:
        """True for tasks that use one instruction for every text."""
        return self.category not in ("retrieval", "reranking")

    @property
    def pair(self) -> InstructionPair:
        """The preset as an :class:`InstructionPair`."""
        return InstructionPair(query=self.query, document=self.document)


def _clean(part: str | None, name: str) -> str | None:
    if part is None:
        return None
    if not isinstance(part, str):
        raise TypeError(f"{name} must be a str or None, got {type(part).__name__}: {short(part)}")
    part = " ".join(part.split())
    return part or None


def build_instruction(text_type: str, *, domain: str | None = None, objective: str | None = None) -> str:
    """Build one instruction from the paper's template.

    ``"Represent the [domain] [text_type] for [task_objective]: "``, with a trailing space as in the
    authors' instructions.

    Args:
        text_type: What the text is: "sentence", "question", "document", "review", ...
        domain: Optional domain: "Wikipedia", "Science", "financial", ...
        objective: Optional task objective: "classification", "retrieving supporting documents", ...

    Returns:
        The instruction string.

    Raises:
        ValueError: If ``text_type`` is empty.

    Examples:
        >>> build_instruction("sentence", objective="classification")
        'Represent the sentence for classification: '
    """
    kind = _clean(text_type, "text_type")
    if not kind:
        raise ValueError(f"text_type must be a non-empty str, got {short(text_type)}")
    words = ["Represent the"]
    dom = _clean(domain, "domain")
    if dom:
        words.append(dom)
    words.append(kind)
    goal = _clean(objective, "objective")
    if goal:
        words.extend(["for", goal])
    return " ".join(words) + ": "


def build_pair(
    *,
    domain: str | None = None,
    query_type: str = "question",
    document_type: str = "document",
    query_objective: str = "retrieving supporting documents",
    document_objective: str = "retrieval",
) -> InstructionPair:
    """Build a query/document instruction pair for an asymmetric task (retrieval, reranking).

    Examples:
        >>> build_pair(domain="Medicine").query
        'Represent the Medicine question for retrieving supporting documents: '
        >>> build_pair(domain="Medicine").document
        'Represent the Medicine document for retrieval: '
    """
    return InstructionPair(
        query=build_instruction(query_type, domain=domain, objective=query_objective),
        document=build_instruction(document_type, domain=domain, objective=document_objective),
    )


@functools.lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    text = resources.files("instructor_integrations").joinpath("data/instructions.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def preset_model_for(model_name: str | None) -> str:
    """The instruction set a model takes: its own for the three checkpoints and their copies, else instructor-large's.

    Decided by :func:`~instructor_integrations._checkpoint.detect_checkpoint`, the same rule that
    decides the pooling (a parent folder's name never counts).

    Examples:
        >>> preset_model_for("/models/instructor-xl")
        'hkunlp/instructor-xl'
        >>> preset_model_for("sentence-transformers/all-MiniLM-L6-v2")
        'hkunlp/instructor-large'
        >>> preset_model_for("/models/instructor-xl/minilm")
        'hkunlp/instructor-large'
    """
    if not model_name:
        return DEFAULT_PRESET_MODEL
    return detect_checkpoint(model_name).preset_model


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _aliases(key: str) -> set[str]:
    norm = _norm(key)
    out = {norm}
    for suffix in _CATEGORY_SUFFIXES:
        if norm.endswith(suffix) and len(norm) > len(suffix):
            out.add(norm[: -len(suffix)])
    return out


def list_presets(model_name: str | None = None, category: str | None = None) -> list[str]:
    """Names of the datasets that have a preset for ``model_name``, optionally of one category.

    Examples:
        >>> "SciFact" in list_presets(category="retrieval")
        True
    """
    entries = _data()["models"][preset_model_for(model_name)]
    return sorted(name for name, entry in entries.items() if category is None or entry["category"] == category)


#: MTEB tasks renamed since the authors' evaluation, whose data is the same task's -> the name they used.
_MTEB_RENAMES = {
    "arxivhierarchicalclusteringp2p": "ArxivClusteringP2P",
    "arxivhierarchicalclusterings2s": "ArxivClusteringS2S",
}
#: A later MTEB version of a task (``STS22.v2``, ``Touche2020Retrieval.v3``) or its hard-negatives subset
#: (``FEVERHardNegatives``): the same task, so the same instructions.
_MTEB_VARIANT = re.compile(r"(?:HardNegatives)?(?:\.v\d+)?$", re.IGNORECASE)


def _base_task(dataset: str) -> str | None:
    """The task that ``dataset`` is a later MTEB version, subset or new name of, if it is one."""
    base = _MTEB_VARIANT.sub("", dataset.strip())
    base = _MTEB_RENAMES.get(_norm(base), base)
    return base if base != dataset.strip() else None


def _find(entries: dict[str, dict[str, str]], dataset: str) -> str | None:
    """The key of ``entries`` that ``dataset`` names (either may carry a trailing category word)."""
    wanted = _aliases(dataset) - {""}
    return next((key for key in entries if wanted & _aliases(key)), None)


def get_preset(dataset: str, model_name: str | None = None) -> TaskPreset:
    """Look up the authors' instruction(s) for ``dataset`` and ``model_name``.

    Names match case-insensitively, ignoring punctuation and a trailing category word
    (``"banking77"`` finds ``Banking77Classification``). A later MTEB version of a task (``STS22.v2``),
    its ``HardNegatives`` subset or its new name (``ArXivHierarchicalClusteringP2P``) takes the
    instructions of the task the authors evaluated.

    Raises:
        TypeError: ``dataset`` is not a str.
        UnknownPresetError: Unknown dataset (a ``ValueError``); the message lists the close matches.

    Examples:
        >>> get_preset("banking77").document
        'Represent the bank purpose for classification: '
    """
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a str, got {type(dataset).__name__}: {short(dataset)}")
    model = preset_model_for(model_name)
    entries: dict[str, dict[str, str]] = _data()["models"][model]
    base = _base_task(dataset)
    key = _find(entries, dataset) or (_find(entries, base) if base is not None else None)
    if key is not None:
        entry = entries[key]
        query = entry.get("query", entry.get("instruction", ""))
        document = entry.get("document", entry.get("instruction", ""))
        return TaskPreset(key, entry["category"], model, query, document, entry.get("source", ""))
    # "retrieval" (the generic pair of every adapter's task=) is a choice too, and the likeliest one.
    close = difflib.get_close_matches(dataset, ["retrieval", *entries], n=5, cutoff=0.5)
    hint = f" Close matches: {', '.join(close)}." if close else ""
    # A model that is not one of the three checkpoints takes instructor-large's set: say so, by its name.
    other = model_name is not None and not detect_checkpoint(model_name).instructor
    whose = f"the instructions of {model}" + (f", used for {model_name}" if other else "")
    raise UnknownPresetError(
        f"no instruction preset for dataset {dataset!r} ({whose}).{hint} "
        "See instructor_integrations.instructions.list_presets(), or give the instructions themselves.",
        dataset=dataset,
        model=model if not other else f"{model}, used for {model_name}",
        close=close,
    )


def resolve_task(task: str | None, model_name: str | None = None) -> InstructionPair:
    """The (query, document) instructions for a ``task`` setting of the adapters.

    ``None`` or ``"retrieval"`` gives :data:`GENERIC_RETRIEVAL`; any other value is a dataset preset.

    Examples:
        >>> resolve_task(None) == GENERIC_RETRIEVAL
        True
    """
    if task is None or (isinstance(task, str) and task.strip().lower() == "retrieval"):
        return GENERIC_RETRIEVAL
    return get_preset(task, model_name).pair
