"""One helper for optional dependencies.

Framework packages are extras (``[langchain]``, ``[llama-index]``, ``[chroma]``, ``[ray]``, ``[train]``,
``[int8]``...). They are imported only inside the module that needs them, through :func:`require`,
whose ``ImportError`` gives the exact ``pip install`` command.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["OPTIONAL_EXTRAS", "require"]

#: Top-level module -> the extra of this package that installs it.
OPTIONAL_EXTRAS: dict[str, str] = {
    "langchain_core": "langchain",
    "langchain_chroma": "langchain",
    "llama_index": "llama-index",
    "chromadb": "chroma",
    "ray": "ray",
    "fastapi": "serve",
    "uvicorn": "serve",
    "orjson": "serve",
    "prometheus_client": "serve",
    "httpx": "serve",
    "langchain_text_splitters": "langchain",
    "pypdf": "pdf",
    "docx": "docx",
    "bs4": "html",
    "datasets": "train",
    "accelerate": "train",
    "peft": "lora",
    "haystack": "haystack",
    "mteb": "mteb",
    "onnxruntime": "int8",
    "onnx": "int8",
}


def require(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise an ImportError that names the pip command to install it.

    Args:
        module: Dotted module name, e.g. ``"langchain_core.embeddings"``.
        extra: The extra of ``instructor-integrations`` that provides it. Looked up from the
            module's top-level package when not given.

    Returns:
        The imported module.

    Raises:
        ImportError: If the module cannot be imported. The message holds the exact command,
            e.g. ``pip install "instructor-integrations[langchain]"``.

    Examples:
        >>> np = require("numpy")
        >>> np.__name__
        'numpy'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = extra or OPTIONAL_EXTRAS.get(top)
        command = f'pip install "instructor-integrations[{extra}]"' if extra else f"pip install {top.replace('_', '-')}"
        raise ImportError(
            f"{module!r} is required for this feature but could not be imported ({exc}). Install it with: {command}"
        ) from exc
