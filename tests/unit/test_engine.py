"""The encoder as an engine, on the test checkpoint: concurrent and async calls, exact results, lifecycle."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from instructor_integrations import EncoderClosedError, InstructorEncoder

INSTRUCTIONS = [None, "Represent the sentence: ", "Represent the Science title: ", "Q:"]


def mixed_call(rng: np.random.Generator) -> tuple[list[str], list[str | None]]:
    n = int(rng.choice([1, 1, 2, 3, 5, 20, 40]))
    texts = [" ".join(["word"] * int(rng.integers(0, 60))) + f" {int(rng.integers(0, 1000))}" for _ in range(n)]
    instructions = [INSTRUCTIONS[int(rng.integers(0, len(INSTRUCTIONS)))] for _ in range(n)]
    return texts, instructions


def test_sixteen_threads_of_mixed_calls_equal_a_serial_run(tiny_path: str, golden: dict) -> None:
    encoder = InstructorEncoder(tiny_path, device="cpu", precision="exact", batch_size=8)
    # 16 threads x 6 calls here; benchmarks/concurrency.py runs the 16 x 100 of the acceptance check.
    calls = [[mixed_call(np.random.default_rng(1000 * t + i)) for i in range(6)] for t in range(16)]
    serial = [[encoder.encode(texts, instructions) for texts, instructions in thread] for thread in calls]
    got: dict[int, list[np.ndarray]] = {}
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            got[t] = [encoder.encode(texts, instructions) for texts, instructions in calls[t]]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:1]
    worst = max(float(np.abs(a - b).max()) for t in range(16) for a, b in zip(got[t], serial[t], strict=True))
    assert worst <= 1e-5
    assert encoder._scheduler.passes > 0
    # Golden parity is unchanged by the engine.
    np.testing.assert_allclose(encoder.encode_pairs(golden["pairs"]), np.asarray(golden["pair_embeddings"]), atol=1e-5)


async def test_aencode_equals_encode_and_concurrent_queries_share_passes(tiny_path: str) -> None:
    encoder = InstructorEncoder(tiny_path, device="cpu")
    queries = [f"question {i} about tides?" for i in range(64)]
    serial = encoder.encode(queries, "Represent the question: ")
    before = encoder._scheduler.passes
    together = await asyncio.gather(*(encoder.aencode([q], "Represent the question: ") for q in queries))
    np.testing.assert_allclose(np.concatenate(together), serial, atol=1e-5)
    assert encoder._scheduler.passes - before < len(queries)  # queries waiting together share passes
    pairs = [["Represent the title: ", "Deep learning"], ["", "plain"]]
    np.testing.assert_allclose(await encoder.aencode_pairs(pairs), encoder.encode_pairs(pairs), atol=1e-6)
    assert (await encoder.aencode([])).shape == (0, encoder.embedding_dimension)


async def test_aencode_validates_before_queueing(tiny_path: str) -> None:
    encoder = InstructorEncoder(tiny_path, device="cpu")
    with pytest.raises(TypeError, match="texts must be a list of str"):
        await encoder.aencode("a bare string")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="priority must be one of"):
        await encoder.aencode(["a"], priority="soon")  # type: ignore[arg-type]


def test_close_fails_waiting_calls_with_a_clear_error(tiny_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = InstructorEncoder(tiny_path, device="cpu", batch_size=2)
    release = threading.Event()
    started = threading.Event()
    real = encoder._execute

    def held(calls):  # type: ignore[no-untyped-def]
        started.set()
        assert release.wait(timeout=30)
        return real(calls)

    monkeypatch.setattr(encoder, "_execute", held)
    outcome: dict[str, object] = {}

    def call(name: str, texts: list[str]) -> None:
        try:
            outcome[name] = encoder.encode(texts, priority="bulk")
        except BaseException as exc:
            outcome[name] = exc

    first = threading.Thread(target=call, args=("running", ["a", "b"]))
    first.start()
    assert started.wait(timeout=30)
    second = threading.Thread(target=call, args=("queued", [f"t{i}" for i in range(10)]))
    second.start()
    while encoder._scheduler.queued() == (0, 0):
        threading.Event().wait(0.005)
    closer = threading.Thread(target=encoder.close)
    closer.start()
    second.join(timeout=30)
    assert isinstance(outcome["queued"], EncoderClosedError)
    release.set()
    first.join(timeout=30)
    closer.join(timeout=30)
    assert isinstance(outcome["running"], np.ndarray) and outcome["running"].shape == (2, 24)
    monkeypatch.setattr(encoder, "_execute", real)
    assert encoder.encode(["usable again"]).shape == (1, 24)


def test_a_failing_call_leaves_other_calls_alone(tiny_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = InstructorEncoder(tiny_path, device="cpu")
    real = encoder._runner.tokenize

    def forward(prompt: str, bodies: list[str]):  # type: ignore[no-untyped-def]
        if "poison" in bodies:
            raise RuntimeError("device lost")
        return real(prompt, bodies)

    monkeypatch.setattr(encoder._runner, "tokenize", forward)
    with pytest.raises(RuntimeError, match="device lost"):
        encoder.encode(["poison", "other"], priority="bulk")
    assert encoder.encode(["healthy"]).shape == (1, 24)


def test_interactive_calls_are_announced_before_their_rows_are_prepared(
    tiny_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = InstructorEncoder(tiny_path, device="cpu")
    seen: list[tuple[str, object]] = []
    announcing, count = encoder._scheduler.announcing, encoder._token_counts

    def recording(interactive: bool = True):  # type: ignore[no-untyped-def]
        seen.append(("announce", interactive))
        return announcing(interactive)

    def counting(bodies: list[str]) -> list[int]:  # rows are prepared while the call is announced
        seen.append(("count", encoder._scheduler._announced))
        return count(bodies)

    monkeypatch.setattr(encoder._scheduler, "announcing", recording)
    monkeypatch.setattr(encoder, "_token_counts", counting)
    encoder.encode(["a query"], "Represent the question: ")
    assert seen[0] == ("announce", True) and len(seen) > 1
    assert all(entry == ("count", 1) for entry in seen[1:]), seen
    seen.clear()
    encoder.encode([f"document {i}" for i in range(20)], "Represent the document: ", priority="auto")
    assert seen[0] == ("announce", False) and len(seen) > 1
    assert all(entry == ("count", 0) for entry in seen[1:]), seen
    assert encoder._scheduler._announced == 0
