"""instructor-integrations: INSTRUCTOR embeddings for LangChain, LlamaIndex and Chroma.

The package root imports no framework: the adapters are loaded on first attribute access.

Examples:
    >>> import instructor_integrations as ii
    >>> encoder = ii.InstructorEncoder("tests/fixtures/tiny-instructor", device="cpu")
    >>> encoder.encode(["hello"], instruction="Represent the greeting: ").shape
    (1, 24)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Before anything imports torch: the OpenMP runtime reads its environment once, when torch loads.
from ._cpu import apply_openmp_defaults, tune_cpu_allocator

apply_openmp_defaults()

from ._protocol import Encoder  # noqa: E402
from .compat import INSTRUCTOR  # noqa: E402
from .encoder import (  # noqa: E402
    DEFAULT_MODEL,
    InstructorEncoder,
    clear_encoder_cache,
    get_encoder,
    is_instructor_checkpoint,
)
from .errors import (  # noqa: E402
    EncoderClosedError,
    ModelLoadError,
    NonFiniteEmbeddingError,
    RemoteEncoderError,
    RemoteRequestError,
    ServerUnavailableError,
)
from .instructions import GENERIC_RETRIEVAL, InstructionPair, build_instruction, build_pair, get_preset  # noqa: E402
from .settings import EncoderSettings  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from .chroma import InstructorEmbeddingFunction
    from .client import RemoteEncoder
    from .langchain import InstructorEmbeddings
    from .llama_index import InstructorEmbedding

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "Encoder",
    "EncoderSettings",
    "GENERIC_RETRIEVAL",
    "INSTRUCTOR",
    "InstructionPair",
    "InstructorEmbedding",
    "InstructorEmbeddingFunction",
    "InstructorEmbeddings",
    "InstructorEncoder",
    "EncoderClosedError",
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
    "get_encoder",
    "get_preset",
    "is_instructor_checkpoint",
    "tune_cpu_allocator",
]

_LAZY = {
    "InstructorEmbeddings": ".langchain",
    "InstructorEmbedding": ".llama_index",
    "InstructorEmbeddingFunction": ".chroma",
    "RemoteEncoder": ".client",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'instructor_integrations' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
