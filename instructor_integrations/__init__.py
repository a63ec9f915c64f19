"""instructor-integrations: INSTRUCTOR embeddings for LangChain, LlamaIndex and Chroma.

Importing the package changes nothing in the process (no environment variable, allocator or thread
setting) and loads neither torch nor a framework: each public name is imported on first access.
CPU services opt in to this package's process settings with :func:`tune_cpu` (the CLI and the
server do so for their own process).

Examples:
    >>> import instructor_integrations as ii
    >>> encoder = ii.InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
    >>> encoder.encode(["hello"], instruction="Represent the greeting: ").shape
    (1, 24)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._engine.cpu import _env_choice, apply_openmp_defaults

if _env_choice() is True:  # INSTRUCTOR_INTEGRATIONS_TUNE_CPU=1: the user opted in before starting Python
    apply_openmp_defaults()

if TYPE_CHECKING:  # pragma: no cover
    from ._checkpoint import CheckpointKind, detect_checkpoint
    from ._engine.cpu import tune_cpu, tune_cpu_allocator
    from ._protocol import Encoder
    from .chroma import InstructorEmbeddingFunction
    from .client import RemoteEncoder
    from .compat import INSTRUCTOR
    from .encoder import DEFAULT_MODEL, InstructorEncoder, clear_encoder_cache, get_encoder, is_instructor_checkpoint
    from .errors import (
        EncoderClosedError,
        ModelLoadError,
        NonFiniteEmbeddingError,
        RemoteEncoderError,
        RemoteRequestError,
        ServerUnavailableError,
    )
    from .instructions import GENERIC_RETRIEVAL, InstructionPair, build_instruction, build_pair, get_preset
    from .langchain import InstructorEmbeddings
    from .llama_index import InstructorEmbedding
    from .settings import EncoderSettings

from ._version import __version__

#: Public name -> the module that defines it (imported on first access).
_LAZY = {
    "CheckpointKind": "._checkpoint",
    "DEFAULT_MODEL": ".settings",
    "Encoder": "._protocol",
    "EncoderClosedError": ".errors",
    "EncoderSettings": ".settings",
    "GENERIC_RETRIEVAL": ".instructions",
    "INSTRUCTOR": ".compat",
    "InstructionPair": ".instructions",
    "InstructorEmbedding": ".llama_index",
    "InstructorEmbeddingFunction": ".chroma",
    "InstructorEmbeddings": ".langchain",
    "InstructorEncoder": ".encoder",
    "ModelLoadError": ".errors",
    "NonFiniteEmbeddingError": ".errors",
    "RemoteEncoder": ".client",
    "RemoteEncoderError": ".errors",
    "RemoteRequestError": ".errors",
    "ServerUnavailableError": ".errors",
    "build_instruction": ".instructions",
    "build_pair": ".instructions",
    "clear_encoder_cache": ".encoder",
    "detect_checkpoint": "._checkpoint",
    "get_encoder": ".encoder",
    "get_preset": ".instructions",
    "is_instructor_checkpoint": ".encoder",
    "tune_cpu": "._engine.cpu",
    "tune_cpu_allocator": "._engine.cpu",
}

__all__ = [
    "CheckpointKind",
    "DEFAULT_MODEL",
    "Encoder",
    "EncoderClosedError",
    "EncoderSettings",
    "GENERIC_RETRIEVAL",
    "INSTRUCTOR",
    "InstructionPair",
    "InstructorEmbedding",
    "InstructorEmbeddingFunction",
    "InstructorEmbeddings",
    "InstructorEncoder",
    "ModelLoadError",
    "NonFiniteEmbeddingError",
    "RemoteEncoder",
    "RemoteEncoderError",
    "RemoteRequestError",
    "ServerUnavailableError",
    "__version__",
    "build_instruction",
    "build_pair",
    "clear_encoder_cache",
    "detect_checkpoint",
    "get_encoder",
    "get_preset",
    "is_instructor_checkpoint",
    "tune_cpu",
    "tune_cpu_allocator",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'instructor_integrations' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
