"""What the three framework adapters share: instruction resolution and the shared encoder.

Adapters translate framework calls into :class:`~instructor_integrations.encoder.InstructorEncoder`
calls; the settings they accept are resolved here, once, the same way for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._protocol import Encoder
from ._validation import check_instruction, short
from .encoder import get_encoder
from .instructions import resolve_task
from .settings import EncoderSettings

__all__ = ["MODEL_SETTINGS", "canonical_names", "encoder_settings", "resolve_encoder", "resolve_instructions"]

#: The encoder settings every adapter takes under the same name and passes to the shared encoder (the model
#: name is each adapter's ``model_name``; ``batch_size`` and ``show_progress_bar`` are per call).
MODEL_SETTINGS = tuple(
    name for name in EncoderSettings.names() if name not in ("model_name_or_path", "batch_size", "show_progress_bar")
)


def encoder_settings(model_name: str, values: Mapping[str, Any]) -> EncoderSettings:
    """The :class:`EncoderSettings` of an adapter: its ``model_name`` and its :data:`MODEL_SETTINGS` values."""
    return EncoderSettings(model_name_or_path=model_name, **{name: values[name] for name in MODEL_SETTINGS})


def resolve_instructions(
    task: str | None, query: str | None, document: str | None, model_name: str | None
) -> tuple[str, str]:
    """The (query, document) instructions: explicit values win, then ``task``, then the generic pair."""
    query = check_instruction(query, "query_instruction")
    document = check_instruction(document, "document_instruction")
    if task is not None and not isinstance(task, str):
        raise TypeError(f"task must be a str (a preset name) or None, got {short(task)}")
    if query is not None and document is not None:
        return query, document
    pair = resolve_task(task, model_name)
    return (pair.query if query is None else query, pair.document if document is None else document)


def resolve_encoder(settings: EncoderSettings, encoder: Encoder | None) -> Encoder:
    """The encoder to use: the one given (in-process or remote), else the process-wide one for these settings."""
    if encoder is not None:
        if not isinstance(encoder, Encoder):
            raise TypeError(
                f"encoder must be an InstructorEncoder or a RemoteEncoder (an Encoder), got {type(encoder).__name__}"
            )
        return encoder
    return get_encoder(settings)


def canonical_names(data: dict[str, Any], legacy: dict[str, str], adapter: str) -> dict[str, Any]:
    """``data`` with each framework-legacy name (``legacy``: old -> canonical) under its canonical name.

    Raises:
        ValueError: Both names of one setting are given.
    """
    out = dict(data)
    for old, new in legacy.items():
        if old in out:
            if new in out:
                raise ValueError(f"{adapter}: give {new}= or its legacy name {old}=, not both")
            out[new] = out.pop(old)
    return out
