"""Reference parity on the golden embeddings of InstructorEmbedding 1.0.1 (shared/parity)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from instructor_integrations import InstructorEncoder

TOL = 1e-5


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    expected = np.asarray(expected, dtype=np.float32)
    assert actual.shape == expected.shape
    assert actual.dtype == np.float32
    assert np.abs(actual - expected).max() <= TOL
    cos = (actual * expected).sum(1) / (np.linalg.norm(actual, axis=1) * np.linalg.norm(expected, axis=1))
    assert cos.min() >= 0.99999


@pytest.mark.parametrize("batch_size", [1, 8, 64])
def test_pairs_match_golden(tiny_encoder: InstructorEncoder, golden: dict, batch_size: int) -> None:
    out = tiny_encoder.encode_pairs(golden["pairs"], batch_size=batch_size)
    assert_close(out, golden["pair_embeddings"])


@pytest.mark.parametrize("batch_size", [1, 8, 64])
def test_plain_match_golden(tiny_encoder: InstructorEncoder, golden: dict, batch_size: int) -> None:
    out = tiny_encoder.encode(golden["plain"], batch_size=batch_size)
    assert_close(out, golden["plain_embeddings"])


@pytest.mark.parametrize("seed", [0, 1])
def test_shuffled_order_and_mixed_batches(tiny_encoder: InstructorEncoder, golden: dict, seed: int) -> None:
    rows = list(zip(golden["pairs"], golden["pair_embeddings"], strict=True))
    random.Random(seed).shuffle(rows)
    out = tiny_encoder.encode_pairs([pair for pair, _ in rows], batch_size=8)
    assert_close(out, [emb for _, emb in rows])


def test_per_row_instructions_through_encode(tiny_encoder: InstructorEncoder, golden: dict) -> None:
    texts = [text for _, text in golden["pairs"]]
    instructions = [instruction or None for instruction, _ in golden["pairs"]]
    out = tiny_encoder.encode(texts, instruction=instructions, batch_size=16)
    assert_close(out, golden["pair_embeddings"])


def test_pairs_and_plain_in_one_call(tiny_encoder: InstructorEncoder, golden: dict) -> None:
    pairs = golden["pairs"][:10] + [["", text] for text in golden["plain"]]
    expected = golden["pair_embeddings"][:10] + golden["plain_embeddings"]
    assert_close(tiny_encoder.encode_pairs(pairs, batch_size=5), expected)


def test_one_token_instruction_is_pooled(tiny_encoder: InstructorEncoder) -> None:
    """Reference quirk: an instruction of one token (plus </s>) is not left out of the pooling."""
    tokenizer = tiny_encoder.model.tokenizer
    candidates = ["a", "I", "Q", "the", "x"]
    one = next(c for c in candidates if len(tokenizer(c)["input_ids"]) - 1 == 1)
    text = "Parton energy loss in QCD matter"
    with_instruction = tiny_encoder.encode_pairs([[one + " ", text]])
    plain_joined = tiny_encoder.encode([(one + " " + text)])
    np.testing.assert_allclose(with_instruction, plain_joined, atol=1e-6)


def test_instruction_is_excluded_from_pooling_but_attended(tiny_encoder: InstructorEncoder) -> None:
    text = "Parton energy loss in QCD matter"
    a = tiny_encoder.encode([text], instruction="Represent the Science title: ")
    b = tiny_encoder.encode([text], instruction="Represent the Wikipedia document for retrieval: ")
    plain = tiny_encoder.encode([text])
    joined = tiny_encoder.encode(["Represent the Science title: " + text])
    # The instruction changes the vector (attended) ...
    assert np.abs(a - b).max() > 1e-3 and np.abs(a - plain).max() > 1e-3
    # ... but is not pooled: not the same as pooling over the joined string.
    assert np.abs(a - joined).max() > 1e-3


def test_duplicates_are_embedded_once_and_returned_in_place(tiny_encoder: InstructorEncoder, golden: dict) -> None:
    texts = ["alpha", "beta", "alpha", "gamma", "beta"]
    out = tiny_encoder.encode(texts, instruction="Represent the word: ")
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[1], out[4])
    single = tiny_encoder.encode(["gamma"], instruction="Represent the word: ")
    np.testing.assert_allclose(out[3], single[0], atol=1e-6)
