"""The CUDA paths: golden parity in float32, automatic bfloat16, the staged pipeline, T5's shared mask,
and the float16 guard. Each is skipped on a machine without CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instructor_integrations import InstructorEncoder, NonFiniteEmbeddingError
from instructor_integrations._engine import t5 as _t5

from ..conftest import TINY

pytestmark = [pytest.mark.gpu, pytest.mark.integration]


@pytest.fixture(scope="module")
def exact() -> InstructorEncoder:
    return InstructorEncoder(str(TINY), device="cuda", precision="exact")


def test_float32_on_cuda_matches_the_golden_vectors(exact: InstructorEncoder, golden: dict) -> None:
    assert exact.device.type == "cuda" and exact.dtype == torch.float32
    got = exact.encode_pairs(golden["pairs"], batch_size=4)
    np.testing.assert_allclose(got, np.asarray(golden["pair_embeddings"]), atol=1e-4)
    np.testing.assert_allclose(exact.encode(golden["plain"]), np.asarray(golden["plain_embeddings"]), atol=1e-4)


@pytest.mark.parametrize("kwargs", [{"precision": "fast"}, {"dtype": "auto"}])
def test_bfloat16_on_cuda_is_within_cosine_0_99(golden: dict, kwargs: dict) -> None:
    encoder = InstructorEncoder(str(TINY), device="cuda", **kwargs)
    if torch.cuda.is_bf16_supported():
        assert encoder.dtype == torch.bfloat16
    got = encoder.encode_pairs(golden["pairs"])
    reference = np.asarray(golden["pair_embeddings"])
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-3)
    assert (got * reference).sum(1).min() >= 0.99


def test_staged_pipeline_keeps_every_row_in_its_place(exact: InstructorEncoder, golden: dict) -> None:
    """Many small batches through the staged pipeline (tokenizing ahead in a second thread), rows shuffled."""
    assert exact._runner.staged
    order = np.random.default_rng(3).permutation(len(golden["pairs"]))
    pairs = [golden["pairs"][i] for i in order] * 3
    expected = np.tile(np.asarray(golden["pair_embeddings"])[order], (3, 1))
    for _ in range(2):
        got = exact.encode_pairs(pairs, batch_size=2)
        np.testing.assert_allclose(got, expected, atol=1e-4)
    # One batch against sentence-transformers' own encode of the same rows with the same prompt.
    instruction = next(p for p, _ in golden["pairs"] if p)
    texts = [t for p, t in golden["pairs"] if p == instruction][:4]
    prompt = exact._prepare(instruction, texts[0])[0]
    bodies = [exact._prepare(instruction, t)[1] for t in texts]
    reference = exact.model.encode(bodies, prompt=prompt, batch_size=len(bodies), convert_to_numpy=True)
    np.testing.assert_allclose(exact._runner.embed(prompt, bodies), reference, atol=1e-5)


def test_t5_shared_mask_is_bit_equal_to_transformers_sdpa(exact: InstructorEncoder) -> None:
    backbone = exact.model[0].auto_model
    assert backbone.config._attn_implementation == _t5.ATTENTION_NAME  # switched on by default on CUDA
    plain = InstructorEncoder(str(TINY), device="cuda", precision="exact")
    plain.model[0].auto_model.set_attn_implementation("sdpa")
    texts = ["A short one.", "A longer text about relative position buckets and padding masks in T5.", ""]
    batch = exact.model.tokenizer(texts, padding=True, return_tensors="pt").to("cuda")
    with torch.inference_mode():
        got = backbone(**batch).last_hidden_state
        expected = plain.model[0].auto_model(**batch).last_hidden_state
    assert torch.equal(got, expected)


def test_float16_overflow_raises_on_cuda() -> None:
    encoder = InstructorEncoder(str(TINY), device="cuda", dtype="float16")
    with torch.no_grad():
        encoder.model[2].linear.weight.fill_(60000.0)  # activations past float16's 65504
    with pytest.raises(NonFiniteEmbeddingError, match="bfloat16"):
        encoder.encode(["overflow me please"] * 3)
