"""Root conftest: keep every test and doctest offline (set before any model library is imported)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# The top-level names of the ingestion modules are aliases of instructor_integrations.ingest.*: their
# doctests are collected there, once.
collect_ignore = [f"instructor_integrations/{name}.py" for name in ("loaders", "sources", "chunking", "vectorstores")]
