"""What the framework adapters share: instruction resolution and the shared encoder.

Adapters translate framework calls into :class:`~instructor_integrations.encoder.InstructorEncoder`
calls; the settings they accept are resolved here, once, the same way for all of them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from ._protocol import Encoder
from ._validation import check_instruction, short
from .encoder import get_encoder
from .instructions import resolve_task
from .settings import EncoderSettings

__all__ = [
    "MODEL_SETTINGS",
    "canonical_names",
    "encoder_settings",
    "old_wrapper_kwargs",
    "resolve_encoder",
    "resolve_instructions",
]

#: The encoder settings every adapter takes under the same name and passes to the shared encoder (the model
#: name is each adapter's ``model_name``; ``batch_size`` and ``show_progress_bar`` are per call).
MODEL_SETTINGS = tuple(
    name for name in EncoderSettings.names() if name not in ("model_name_or_path", "batch_size", "show_progress_bar")
)


#: ``model_kwargs`` / ``encode_kwargs`` keys of the old wrappers (``HuggingFaceInstructEmbeddings``) -> settings.
_OLD_MODEL_KWARGS = ("device", "trust_remote_code", "cache_folder", "local_files_only")
_OLD_ENCODE_KWARGS = ("batch_size", "show_progress_bar")


def old_wrapper_kwargs(data: dict[str, Any], adapter: str) -> dict[str, Any]:
    """``data`` with the old wrappers' ``model_kwargs`` and ``encode_kwargs`` turned into settings, with a warning.

    ``model_kwargs={"device": ...}`` and ``encode_kwargs={"batch_size": ...}`` (and the other keys that
    have a setting) keep their meaning; ``normalize_embeddings=True`` is accepted (INSTRUCTOR checkpoints
    end in a Normalize module: their vectors have unit length already).

    Raises:
        ValueError: A key that has no setting here, named with the ones that do; a key also given as a setting.
    """
    out = dict(data)
    for group, allowed in (
        ("model_kwargs", _OLD_MODEL_KWARGS),
        ("encode_kwargs", (*_OLD_ENCODE_KWARGS, "normalize_embeddings")),
    ):
        given = out.pop(group, None)
        if given is None:
            continue
        if not isinstance(given, Mapping):
            raise TypeError(f"{adapter}: {group} must be a dict, got {short(given)}")
        for key, value in given.items():
            if key not in allowed:
                raise ValueError(
                    f"{adapter}: {group}[{key!r}] has no setting here; the {group} keys that do: {', '.join(allowed)} "
                    "(every setting is a field of its own, see EncoderSettings)"
                )
            if key == "normalize_embeddings":
                if value is not True:
                    raise ValueError(
                        f"{adapter}: encode_kwargs['normalize_embeddings']={value!r} is not available: INSTRUCTOR "
                        "vectors are normalised by the checkpoint's own Normalize module, as in the reference"
                    )
                warnings.warn(
                    f"{adapter}: encode_kwargs['normalize_embeddings'] is not needed (INSTRUCTOR checkpoints normalise "
                    "their vectors themselves, in their Normalize module)",
                    DeprecationWarning,
                    stacklevel=4,
                )
                continue
            if key in out:
                raise ValueError(f"{adapter}: give {key}= or {group}[{key!r}], not both")
            warnings.warn(f"{adapter}: {group}[{key!r}] is deprecated, use {key}=", DeprecationWarning, stacklevel=4)
            out[key] = value
    return out


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
