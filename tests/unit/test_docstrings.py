"""Docstrings state behaviour; measured figures live in the docs, generated from result files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "instructor_integrations"
#: A ratio ("1.5x", "2x"), a throughput ("300 tokens/s", "81 queries/s"), a percentage, a "measured N".
MEASUREMENT = re.compile(
    r"\b\d+(\.\d+)?x\b|\b\d[\d,.]*\s*(tokens|docs|texts|queries|requests|rows|chars|characters)/s\b|\b\d+(\.\d+)?\s?%"
    r"|measured[^.\n]{0,40}\d",
    re.IGNORECASE,
)


def docstrings() -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                text = ast.get_docstring(node, clean=False)
                if text:
                    line = getattr(node, "lineno", 1)
                    found.append((f"{path.relative_to(PACKAGE.parent)}:{line}", line, text))
    return found


def test_no_docstring_carries_a_measured_figure():
    offenders = []
    for where, _, text in docstrings():
        # Doctest lines are code and their output, not prose.
        prose = "\n".join(line for line in text.splitlines() if not line.strip().startswith((">>>", "...")))
        for match in MEASUREMENT.finditer(prose):
            offenders.append(f"{where}: {match.group(0)!r}")
    assert not offenders, "measured figures in docstrings (put them in docs/, generated):\n" + "\n".join(offenders)


def test_the_pattern_catches_what_it_is_for():
    for text in ("1.45x the throughput", "81 queries/s", "22-24%", "measured 1.5 times"):
        assert MEASUREMENT.search(text), text
    for text in ("8 x 512 batch", "max_seq_length=512", "a 2-core machine"):
        assert not MEASUREMENT.search(text), text
