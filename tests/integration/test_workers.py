"""num_workers > 1: batches planned here, embedded in spawned worker processes, results in order."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from instructor_integrations import InstructorEncoder

from ..conftest import TINY


@pytest.fixture(scope="module")
def pooled():
    with InstructorEncoder(str(TINY), device="cpu", num_workers=2) as encoder:
        yield encoder
    assert encoder._pool is not None and not encoder._pool.started


def test_workers_reproduce_the_golden_vectors(pooled: InstructorEncoder, golden: dict) -> None:
    # batch_size=2 makes many batches, so they all go through the worker processes.
    got = pooled.encode_pairs(golden["pairs"], batch_size=2, priority="bulk")
    assert pooled._pool is not None and pooled._pool.started
    np.testing.assert_allclose(got, np.asarray(golden["pair_embeddings"]), atol=1e-5)


def test_workers_keep_input_order_and_duplicates(pooled: InstructorEncoder, tiny_encoder: InstructorEncoder) -> None:
    texts = [f"document number {i} " + "word " * (i % 7) for i in range(23)]
    instructions: list[str | None] = ["Represent the document: " if i % 2 else None for i in range(len(texts))]
    texts.append(texts[5])  # the same input twice: embedded once, both rows filled
    instructions.append(instructions[5])
    got = pooled.encode(texts, instructions, batch_size=3, priority="bulk")
    np.testing.assert_allclose(got, tiny_encoder.encode(texts, instructions, batch_size=3), atol=1e-5)
    np.testing.assert_array_equal(got[5], got[-1])


def test_one_batch_runs_here_and_close_stops_the_workers(tiny_path: str, tiny_encoder: InstructorEncoder) -> None:
    encoder = InstructorEncoder(tiny_path, device="cpu", num_workers=2)
    pool = encoder._pool
    assert pool is not None
    one = encoder.encode(["a single query"], "Represent the question: ")
    assert not pool.started  # a one-batch call does not pay for starting processes
    np.testing.assert_allclose(one, tiny_encoder.encode(["a single query"], "Represent the question: "), atol=1e-6)
    # Bulk calls of several batches go to the workers (a call of a few texts is interactive by default,
    # and runs here in a batch it may share with other small calls).
    many = encoder.encode(["x", "y y", "z z z"], batch_size=1, priority="bulk")
    assert pool.started
    encoder.close()
    assert not pool.started
    # The next multi-batch call starts new workers and gives the same numbers.
    np.testing.assert_allclose(encoder.encode(["x", "y y", "z z z"], batch_size=1, priority="bulk"), many, atol=1e-6)
    encoder.close()


def test_script_without_main_guard_gets_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from instructor_integrations import InstructorEncoder
            encoder = InstructorEncoder({str(TINY)!r}, device="cpu", num_workers=2)
            encoder.encode(["a", "b", "c"], batch_size=1, priority="bulk")
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0
    assert "encoder worker processes could not start" in done.stderr
    assert "if __name__ == '__main__':" in done.stderr


def test_a_killed_worker_fails_the_call_and_the_next_call_recovers(tiny_path: str) -> None:
    import os
    import signal

    encoder = InstructorEncoder(tiny_path, device="cpu", num_workers=2)
    texts = [f"text {i}" for i in range(8)]
    first = encoder.encode(texts, batch_size=1, priority="bulk")
    pool = encoder._pool
    assert pool is not None and pool._executor is not None
    victim = next(iter(pool._executor._processes.values()))
    os.kill(victim.pid, signal.SIGKILL)
    victim.join(timeout=30)
    with pytest.raises(RuntimeError, match="an encoder worker process died"):
        encoder.encode(texts, batch_size=1, priority="bulk")
    assert not pool.started
    np.testing.assert_allclose(encoder.encode(texts, batch_size=1, priority="bulk"), first, atol=1e-6)
    encoder.close()
