"""precision="fast" (bfloat16): finite, unit-norm, close to exact. No timings here (see benchmarks/)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from instructor_integrations import InstructorEncoder


@pytest.mark.parametrize("kwargs", [{"precision": "fast"}, {"dtype": "bfloat16"}], ids=["fast", "bfloat16"])
def test_fast_path_is_close_to_exact(tiny_path: str, golden: dict, kwargs: dict) -> None:
    exact = np.asarray(golden["pair_embeddings"], dtype=np.float32)
    encoder = InstructorEncoder(tiny_path, device="cpu", **kwargs)
    if "dtype" in kwargs:
        assert encoder.dtype == torch.bfloat16
    fast = encoder.encode_pairs(golden["pairs"], batch_size=16)
    assert fast.dtype == np.float32
    assert np.isfinite(fast).all()
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cosine = (fast * exact).sum(1)
    assert cosine.min() >= 0.99


def test_auto_token_budget_on_cpu(tiny_path: str) -> None:
    from instructor_integrations.encoder import CPU_TOKEN_BUDGET

    assert InstructorEncoder(tiny_path, device="cpu").token_budget == CPU_TOKEN_BUDGET
    assert InstructorEncoder(tiny_path, device="cpu", token_budget=None).token_budget is None
    with pytest.raises(ValueError, match="token_budget"):
        InstructorEncoder(tiny_path, device="cpu", token_budget="big")


def test_token_budget_does_not_change_results(tiny_path: str, golden: dict) -> None:
    small = InstructorEncoder(tiny_path, device="cpu", token_budget=600).encode_pairs(golden["pairs"])
    np.testing.assert_allclose(small, np.asarray(golden["pair_embeddings"]), atol=1e-5)


def _record_threads(encoder: InstructorEncoder, meet: int = 0) -> list[str]:
    """Wrap the encoder's forward so that each batch appends the name of the thread it ran on.

    With ``meet``, the first batch of each feeding thread waits until ``meet`` feeding threads hold one:
    every feeding thread is then used whatever the scheduling of the machine (a batch blocked here keeps
    its thread busy, so the pool starts the next thread for the next batch).
    """
    names: list[str] = []
    forward = encoder._forward
    barrier = threading.Barrier(meet, timeout=30) if meet else None
    met: set[str] = set()

    def recording(prompt: str, bodies: list[str]) -> torch.Tensor:
        name = threading.current_thread().name
        names.append(name)
        if barrier is not None and name.startswith("instructor-feed") and name not in met:
            met.add(name)
            barrier.wait()
        return forward(prompt, bodies)

    encoder._forward = recording  # type: ignore[method-assign]
    return names


@pytest.mark.parametrize("feeders", [2, 3])
def test_feeder_threads_keep_reference_results_and_order(tiny_path: str, golden: dict, feeders: int) -> None:
    """The CUDA feeder path (threads sharing one model and tokenizer), forced on the CPU.

    Small batches, mixed instructions (several prompt groups) and a shuffled order: every row must come
    back in its place with the reference embedding, and no thread may trip the shared fast tokenizer.
    """
    encoder = InstructorEncoder(tiny_path, device="cpu", batch_size=3)
    encoder._feeders = feeders
    order = np.random.default_rng(7).permutation(len(golden["pairs"]))
    pairs = [golden["pairs"][i] for i in order]
    expected = np.asarray(golden["pair_embeddings"], dtype=np.float32)[order]
    calls = _record_threads(encoder, meet=feeders)
    for _ in range(3):
        out = encoder.encode_pairs(pairs)
        np.testing.assert_allclose(out, expected, atol=1e-5)
    fed = {name for name in calls if name.startswith("instructor-feed")}
    assert len(fed) == feeders, f"batches ran on {sorted(set(calls))}"
    # Only the first call's first batch runs in the thread that runs the queue (here the caller, which drives
    # it; it lets sentence-transformers set the tokenizer's truncation and padding once); after that every
    # batch goes to the feeding threads.
    assert sum(not name.startswith("instructor-feed") for name in calls) == 1
    assert not calls[0].startswith("instructor-feed")


def test_feeders_settle_the_tokenizer_again_when_max_seq_length_changes(tiny_path: str, golden: dict) -> None:
    encoder = InstructorEncoder(tiny_path, device="cpu", batch_size=2)
    encoder._feeders = 2
    pairs = golden["pairs"]
    callers = _record_threads(encoder)

    def alone() -> int:  # batches run by the thread that runs the queue, not the feeding threads
        return sum(not name.startswith("instructor-feed") for name in callers)

    encoder.encode_pairs(pairs)
    encoder.encode_pairs(pairs)
    assert alone() == 1
    # A new truncation length (still above the longest instruction, 32 tokens) that sentence-transformers
    # sets on its next call: that call's first batch runs alone again.
    encoder.model.max_seq_length = 40
    shorter = encoder.encode_pairs(pairs)
    assert alone() == 2
    reference = InstructorEncoder(tiny_path, device="cpu", max_seq_length=40).encode_pairs(pairs)
    np.testing.assert_allclose(shorter, reference, atol=1e-6)


def test_token_counts_match_the_model_tokenizer(tiny_path: str, golden: dict) -> None:
    """Counting uses a copy of the Rust tokenizer; the counts must be the model tokenizer's own."""
    encoder = InstructorEncoder(tiny_path, device="cpu")
    texts = [text for _, text in golden["pairs"]] + ["", "  spaces  ", "x " * 700, "Ünïcödé – text"]
    expected = [len(ids) for ids in encoder.model.tokenizer(texts, truncation=False, verbose=False)["input_ids"]]
    assert encoder._token_counts(texts) == expected
    # The copy never changes the model tokenizer's settings.
    before = encoder.model.tokenizer.backend_tokenizer.truncation
    encoder._token_counts(texts)
    assert encoder.model.tokenizer.backend_tokenizer.truncation == before


def test_instruction_length_is_truncated_like_the_reference(tiny_path: str) -> None:
    encoder = InstructorEncoder(tiny_path, device="cpu", max_seq_length=8)
    long = "Represent the very long scientific instruction with many many words for retrieval:"
    ids = encoder.model.tokenizer(long, truncation=True, max_length=8)["input_ids"]
    assert encoder._instruction_length(long) == len(ids) - 1 == 7
    short = "Represent the title:"
    full = len(encoder.model.tokenizer(short)["input_ids"])
    assert full > 8
    assert encoder._instruction_length(short) == 7
    encoder.model.max_seq_length = 512  # the cached length belongs to the old limit
    assert encoder._instruction_length(short) == full - 1


def test_feeder_error_propagates_and_leaves_no_thread_running(tiny_path: str, golden: dict) -> None:
    encoder = InstructorEncoder(tiny_path, device="cpu", batch_size=2)
    encoder._feeders = 2
    forward = encoder._forward
    seen: list[int] = []

    def failing(prompt: str, bodies: list[str]) -> torch.Tensor:
        seen.append(len(bodies))
        if len(seen) == 4:
            raise RuntimeError("device lost")
        return forward(prompt, bodies)

    encoder._forward = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="device lost"):
        encoder.encode_pairs(golden["pairs"])
    assert not [t for t in threading.enumerate() if t.name.startswith("instructor-feed")]
    assert len(seen) < len(golden["pairs"]) // 2, "batches after the failure were still submitted"
    encoder._forward = forward  # type: ignore[method-assign]
    np.testing.assert_allclose(encoder.encode_pairs(golden["pairs"]), np.asarray(golden["pair_embeddings"]), atol=1e-5)


def test_each_feeder_thread_keeps_one_stream(tiny_path: str, golden: dict) -> None:
    """One stream per feeding thread (the CUDA caching allocator keeps a pool per stream), the same
    streams on every call; the caller's one batch runs on its current stream."""
    encoder = InstructorEncoder(tiny_path, device="cpu", batch_size=3)
    encoder._feeders = 2
    streams = [object(), object()]
    encoder._feeder_streams = lambda: streams  # type: ignore[method-assign]
    embed_on = encoder._embed_on
    seen: list[tuple[int, str, object]] = []
    call = 0

    def recording(stream: object, prompt: str, bodies: list[str]) -> np.ndarray:
        seen.append((call, threading.current_thread().name, stream))
        return embed_on(None, prompt, bodies)

    encoder._embed_on = recording  # type: ignore[method-assign]
    for call in range(2):  # noqa: B007 (recording() reads it)
        np.testing.assert_allclose(
            encoder.encode_pairs(golden["pairs"]), np.asarray(golden["pair_embeddings"]), atol=1e-5
        )
    for index in range(2):
        by_thread: dict[str, set[int]] = {}
        for _, name, stream in (row for row in seen if row[0] == index):
            by_thread.setdefault(name if name.startswith("instructor-feed") else "engine", set()).add(id(stream))
        # The thread that runs the queue runs the first call's first batch (on its current stream), nothing after.
        assert by_thread.pop("engine", None) == ({id(None)} if index == 0 else None)
        assert all(len(ids) == 1 for ids in by_thread.values()), by_thread
        used = [i for ids in by_thread.values() for i in ids]
        assert len(used) == len(set(used)) and set(used) <= {id(s) for s in streams}  # a stream to a thread
