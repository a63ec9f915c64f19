"""Every example runs offline end to end with the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("chroma_collection.py", "top hit: Mount Etna"),
        ("langchain_rag.py", "context:  The Rosetta Stone"),
        ("llama_index_query.py", "top hit: Penicillin"),
    ],
)
def test_example_runs(script: str, expected: str, minilm: str) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--model", minilm, "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert expected in out.stdout
