"""Regenerate the bad-input table of docs/reliability.md from the test battery.

    python scripts/gen_reliability.py

Runs every case of tests/unit/test_bad_inputs.py and writes the error each one raises, as a user
sees it, between the markers in docs/reliability.md.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.unit.test_bad_inputs import CASES  # noqa: E402

BEGIN, END = "<!-- bad-inputs:begin -->", "<!-- bad-inputs:end -->"


def row(case) -> str:  # type: ignore[no-untyped-def]
    try:
        case.call()
        message = "(no error: FIX ME)"
    except BaseException as exc:
        message = f"{type(exc).__name__}: {exc}"
    message = " ".join(message.split()).replace("|", "\\|").replace("`", "'")
    if len(message) > 220:
        message = message[:217] + "..."
    return f"| `{case.id}` | `{case.where}` | `{case.input}` | `{message}` |"


def main() -> None:
    table = ["| case | where | input | what the user sees |", "| --- | --- | --- | --- |"]
    table += [row(case) for case in CASES]
    path = ROOT / "docs" / "reliability.md"
    text = path.read_text("utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    path.write_text(text[:start] + "\n" + "\n".join(table) + "\n" + text[end:], "utf-8")
    print(f"wrote {len(CASES)} cases to {path}")


if __name__ == "__main__":
    main()
