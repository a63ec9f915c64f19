"""Hugging Face Text Embeddings Inference's protocol on the embedding server: ``POST /embed``, ``GET /info``.

TEI's clients (``huggingface_hub.InferenceClient.feature_extraction``, LangChain's
``HuggingFaceEndpointEmbeddings``, LlamaIndex's ``TextEmbeddingsInference``) send
``{"inputs": ..., "normalize": ..., "truncate": ..., "prompt_name": ...}`` and read a JSON array of
vectors; errors are ``{"error": message, "error_type": kind}``. This module parses that body into the
server's rows and instructions and turns the server's errors into TEI's shape; the routes live in
:mod:`instructor_integrations.server`, on the same encoder queue, key and limits as ``/v1/embeddings``.

What each field does here:

* ``inputs``: a string or a list of strings (token ids are refused).
* ``instruction`` (this server's own): a string, one per input, or ``null`` for plain pooling.
* ``prompt_name``: ``"query"`` or ``"document"`` (the side of the server's default task), or
  ``"TASK:query"`` / ``"TASK:document"`` for a preset (``"SciFact:query"``).
* Neither: an input that starts with one of the served model's preset instructions (as LlamaIndex's
  ``TextEmbeddingsInference`` writes them into the text) has it taken as its instruction; any other
  input gets the server's default task and side, as on ``/v1/embeddings``.
* ``normalize`` (default true): unit vectors. ``false`` gives the model's own output (already unit
  length for checkpoints that end in a Normalize module, as INSTRUCTOR's do).
* ``truncate``: ``true``, or absent (the server truncates, ``auto_truncate`` in ``/info``): inputs past
  the token limit are cut; ``false``: such an input is refused with 413.
* ``truncation_direction``: ``"Right"`` only (INSTRUCTOR keeps the beginning).
* ``dimensions``: refused unless ``null`` (INSTRUCTOR vectors cannot be shortened).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._validation import check_instructions
from .instructions import list_presets, resolve_task

__all__ = [
    "DIRECTIONS",
    "FIELDS",
    "TeiInputError",
    "TeiRequest",
    "error_body",
    "error_status",
    "parse_body",
    "prefixed_instructions",
    "split_prefix",
]

#: The body fields ``/embed`` accepts: TEI's, then this server's ``instruction``.
FIELDS = ("inputs", "normalize", "truncate", "truncation_direction", "prompt_name", "dimensions", "instruction")
SIDES = ("query", "document")
#: The ``truncation_direction`` values taken (INSTRUCTOR keeps the start of a long input).
DIRECTIONS = ("Right", "right")

#: TEI's ``error_type`` for a status this server answers.
_ERROR_TYPES = {401: "Unauthorized", 413: "Validation", 422: "Validation", 429: "Overloaded", 503: "Unhealthy"}


@dataclass(frozen=True)
class TeiRequest:
    """A parsed ``/embed`` body: the texts, then how to embed them."""

    texts: list[str]
    #: One instruction per text, or ``None`` where the server's default (or a prefix found in the text) decides.
    instructions: list[str | None] | None
    #: ``(task, side)`` from ``prompt_name``, or ``None``.
    prompt: tuple[str | None, str] | None
    normalize: bool
    #: ``None``: the server's choice (it truncates).
    truncate: bool | None


class TeiInputError(ValueError):
    """A body TEI would refuse (answered 422, or 413 where TEI says the payload is too large)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def error_status(status: int, code: str | None) -> int:
    """The status TEI gives an error this server answers with ``status`` and ``code``.

    A bad body is 422 (TEI's validation status); a full queue is 429 (TEI's ``Overloaded``); others keep theirs.

    Examples:
        >>> error_status(400, "invalid_json"), error_status(503, "queue_full"), error_status(413, None)
        (422, 429, 413)
    """
    if status == 400:
        return 422
    if status == 503 and code == "queue_full":
        return 429
    return status


def error_body(status: int, message: str) -> bytes:
    """TEI's error body, as ASCII JSON (a name the client sent is escaped, never an encoding error).

    Examples:
        >>> error_body(422, "bad")
        b'{"error": "bad", "error_type": "Validation"}'
    """
    kind = _ERROR_TYPES.get(status, "Backend" if status >= 500 else "Validation")
    return json.dumps({"error": message, "error_type": kind}).encode("ascii")


def parse_body(body: Any) -> TeiRequest:  # noqa: C901 - one check per field of TEI's body, each with its message
    """Check an ``/embed`` body: each field's type and value, naming the field and what it accepts.

    Raises:
        TeiInputError: The body is not a valid embed request.

    Examples:
        >>> parse_body({"inputs": "a", "prompt_name": "SciFact:query"}).prompt
        ('SciFact', 'query')
    """
    if not isinstance(body, dict):
        raise TeiInputError(f"the body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise TeiInputError(f"unrecognized field(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(FIELDS)}")
    if "inputs" not in body:
        raise TeiInputError("'inputs' is required: a string or a list of strings")
    inputs = body["inputs"]
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts:
        raise TeiInputError("'inputs' must be a string or a non-empty list of strings")
    if not all(isinstance(text, str) for text in texts):
        raise TeiInputError("'inputs' holds token ids or other values; this server takes text (send strings)")
    normalize = body.get("normalize", True)
    truncate = body.get("truncate")
    for name, value in (("normalize", normalize), ("truncate", truncate)):
        if value is not None and not isinstance(value, bool):
            raise TeiInputError(f"'{name}' must be true or false, got {json.dumps(value)[:40]}")
    direction = body.get("truncation_direction")
    if direction is not None and direction not in DIRECTIONS:
        raise TeiInputError(f"'truncation_direction' must be 'Right' (INSTRUCTOR keeps the start), got {direction!r}")
    if body.get("dimensions") is not None:
        raise TeiInputError("'dimensions' is not supported: INSTRUCTOR vectors cannot be shortened (leave it out)")
    instructions = None
    if "instruction" in body:
        if body.get("prompt_name") is not None:
            raise TeiInputError("give 'instruction' or 'prompt_name', not both")
        try:
            instructions = check_instructions(body["instruction"], len(texts))
        except (TypeError, ValueError) as exc:
            raise TeiInputError(str(exc)) from None
    return TeiRequest(texts, instructions, _prompt(body.get("prompt_name")), normalize is not False, truncate)


def _prompt(name: Any) -> tuple[str | None, str] | None:
    if name is None:
        return None
    if not isinstance(name, str):
        raise TeiInputError(f"'prompt_name' must be a string, got {type(name).__name__}")
    task, _, side = name.rpartition(":")
    if side not in SIDES:
        raise TeiInputError(
            f"'prompt_name' must be 'query', 'document', or 'TASK:query' / 'TASK:document' for a preset "
            f"(e.g. 'SciFact:query'), got {name!r}"
        )
    return (task or None, side)


def prefixed_instructions(model_name: str | None) -> list[tuple[str, str]]:
    """The instructions an input may start with: ``(stripped, as the preset writes it)``, longest first.

    The served model's presets and the generic retrieval pair.

    Examples:
        >>> ("Represent the document for retrieval:", "Represent the document for retrieval: ") in (
        ...     prefixed_instructions("hkunlp/instructor-base")
        ... )
        True
    """
    found: dict[str, str] = {}
    for task in (None, *list_presets(model_name)):
        pair = resolve_task(task, model_name)
        for text in (pair.query, pair.document):
            if text and text.strip():
                found.setdefault(text.strip(), text)
    return sorted(found.items(), key=lambda item: len(item[0]), reverse=True)


def split_prefix(text: str, prefixes: list[tuple[str, str]]) -> tuple[str | None, str]:
    """``(instruction, rest)`` when ``text`` starts with one of ``prefixes`` followed by a space or its end.

    The instruction is the preset's own text; the rest is what follows, stripped (the reference strips
    every text), so the row is the one ``encode([rest], instruction)`` embeds.

    Examples:
        >>> prefix = ("Represent the document for retrieval:", "Represent the document for retrieval: ")
        >>> split_prefix("Represent the document for retrieval:  Tides.", [prefix])
        ('Represent the document for retrieval: ', 'Tides.')
        >>> split_prefix("Representation theory", [("Represent", "Represent ")])
        (None, 'Representation theory')
    """
    stripped = text.lstrip()
    for prefix, instruction in prefixes:
        if stripped.startswith(prefix):
            rest = stripped[len(prefix) :]
            if not rest or rest[0].isspace():
                return instruction, rest.strip()
    return None, text
