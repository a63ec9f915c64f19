"""precision="fast" (bfloat16): finite, unit-norm, close to exact. No timings here (see benchmarks/)."""

from __future__ import annotations

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
