"""precision="fast" (bfloat16), token budgets and counting, the staged pipeline. No timings (see benchmarks/)."""

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


def _staged(encoder: InstructorEncoder) -> list[tuple[str, str]]:
    """Force the staged pipeline (an accelerator's path) on the CPU; record each stage's thread per batch."""
    encoder._runner.staged = True
    seen: list[tuple[str, str]] = []
    tokenize, compute = encoder._runner.tokenize, encoder._runner.compute

    def tokenizing(prompt: str, bodies: list[str]) -> dict:
        seen.append(("tokenize", threading.current_thread().name))
        return tokenize(prompt, bodies)

    def computing(features: dict) -> torch.Tensor:
        seen.append(("compute", threading.current_thread().name))
        return compute(features)

    encoder._runner.tokenize = tokenizing  # type: ignore[method-assign]
    encoder._runner.compute = computing  # type: ignore[method-assign]
    return seen


def test_staged_pipeline_equals_sentence_transformers_encode_and_the_golden_vectors(
    tiny_path: str, golden: dict
) -> None:
    """Small batches, mixed instructions (several prompt groups) and a shuffled order, run staged:
    every row comes back in its place, equal to ``SentenceTransformer.encode`` of the same batch and to the
    reference's golden vector; tokenizing runs in the pipeline's thread, the forward passes in the caller's."""
    encoder = InstructorEncoder(tiny_path, device="cpu", batch_size=3)
    order = np.random.default_rng(7).permutation(len(golden["pairs"]))
    pairs = [golden["pairs"][i] for i in order]
    expected = np.asarray(golden["pair_embeddings"], dtype=np.float32)[order]
    batches: list[tuple[str, list[str]]] = []
    execute = encoder._runner.run

    def recording(calls):  # type: ignore[no-untyped-def]
        batches.extend(calls)
        return execute(calls)

    encoder._runner.run = recording  # type: ignore[method-assign]
    seen = _staged(encoder)
    for _ in range(2):
        out = encoder.encode_pairs(pairs)
        np.testing.assert_allclose(out, expected, atol=1e-5)
    assert len(batches) >= 2 * (len(pairs) // 3)
    stages = list(seen)
    # Each staged batch against sentence-transformers' own encode of the same rows with the same prompt.
    for prompt, bodies in batches[:6]:
        reference = encoder.model.encode(bodies, prompt=prompt, batch_size=len(bodies), convert_to_numpy=True)
        np.testing.assert_allclose(encoder._runner.embed(prompt, bodies), reference, atol=1e-6)
    tokenizers = {name for stage, name in stages if stage == "tokenize"}
    computers = {name for stage, name in stages if stage == "compute"}
    assert tokenizers == {"instructor-tokenize"}, tokenizers
    assert computers == {threading.current_thread().name}, computers  # the caller drives the queue
    assert not [t for t in threading.enumerate() if t.name == "instructor-tokenize"]


def test_staged_pipeline_follows_a_new_max_seq_length(tiny_path: str, golden: dict) -> None:
    encoder = InstructorEncoder(tiny_path, device="cpu", batch_size=2)
    _staged(encoder)
    pairs = golden["pairs"]
    np.testing.assert_allclose(encoder.encode_pairs(pairs), np.asarray(golden["pair_embeddings"]), atol=1e-5)
    # A new truncation length (still above the longest instruction, 32 tokens) that sentence-transformers sets on
    # the tokenizer in the pipeline's thread.
    encoder.model.max_seq_length = 40
    shorter = encoder.encode_pairs(pairs)
    reference = InstructorEncoder(tiny_path, device="cpu", max_seq_length=40).encode_pairs(pairs)
    np.testing.assert_allclose(shorter, reference, atol=1e-6)


def test_token_counting_in_other_threads_never_trips_the_pipeline_tokenizer(tiny_path: str, golden: dict) -> None:
    """Counting (callers' threads) uses a copy of the Rust tokenizer; the model's is the pipeline's alone."""
    encoder = InstructorEncoder(tiny_path, device="cpu", batch_size=2)
    _staged(encoder)
    texts = [text for _, text in golden["pairs"]]
    stop = threading.Event()
    errors: list[BaseException] = []

    def count() -> None:
        while not stop.is_set():
            try:
                encoder.count_tokens(texts, "Represent the sentence: ")
            except BaseException as exc:
                errors.append(exc)

    counters = [threading.Thread(target=count) for _ in range(3)]
    for thread in counters:
        thread.start()
    try:
        for _ in range(3):
            got = encoder.encode_pairs(golden["pairs"])
            np.testing.assert_allclose(got, np.asarray(golden["pair_embeddings"]), atol=1e-5)
    finally:
        stop.set()
        for thread in counters:
            thread.join()
    assert errors == []


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


@pytest.mark.parametrize("stage", ["tokenize", "compute"])
def test_a_staged_failure_stops_the_pipeline_and_leaves_no_thread_running(
    tiny_path: str, golden: dict, stage: str
) -> None:
    from instructor_integrations._engine.runner import STAGE_DEPTH

    encoder = InstructorEncoder(tiny_path, device="cpu", batch_size=2)
    seen = _staged(encoder)
    wrapped = getattr(encoder._runner, stage)
    calls: list[int] = []

    def failing(*args):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("device lost")
        return wrapped(*args)

    setattr(encoder._runner, stage, failing)
    with pytest.raises(RuntimeError, match="device lost"):
        encoder.encode_pairs(golden["pairs"])
    assert not [t for t in threading.enumerate() if t.name == "instructor-tokenize"]
    tokenized = sum(kind == "tokenize" for kind, _ in seen)
    assert tokenized <= 2 + STAGE_DEPTH + 1, "batches after the failure were still tokenized"
    setattr(encoder._runner, stage, wrapped)
    np.testing.assert_allclose(encoder.encode_pairs(golden["pairs"]), np.asarray(golden["pair_embeddings"]), atol=1e-5)
