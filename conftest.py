"""Root conftest: keep every test and doctest offline (set before any model library is imported)."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# precision="int8" graphs go to a folder of this run, never into the user's cache (subprocesses inherit it).
os.environ.setdefault("INSTRUCTOR_INTEGRATIONS_CACHE", tempfile.mkdtemp(prefix="instructor-int8-tests-"))

# The top-level names of the ingestion modules are aliases of instructor_integrations.ingest.*: their
# doctests are collected there, once.
collect_ignore = [f"instructor_integrations/{name}.py" for name in ("loaders", "sources", "chunking", "vectorstores")]
