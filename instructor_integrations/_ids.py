"""The id rule of stored records: one content hash, for the readers, the store writer and Ray.

This module imports nothing but the standard library.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["content_id"]


def content_id(text: str, metadata: dict[str, Any] | None = None) -> str:
    """A stable id from the content (sha256 of the text, and the metadata when given).

    The same in every process and on every machine (``tests/integration/test_ingest_rules.py``).

    Examples:
        >>> content_id("hello")
        '2cf24dba5fb0a30e26e83b2ac5b9e29e'
        >>> content_id("hello", {"chunk": 0}) == content_id("hello", {"chunk": 1})
        False
    """
    digest = hashlib.sha256(text.encode("utf-8"))
    if metadata:
        digest.update(repr(sorted(metadata.items())).encode("utf-8"))
    return digest.hexdigest()[:32]
