"""compile=True on the CPU (Inductor with frozen weights): the numbers stay the model's."""

from __future__ import annotations

import numpy as np
import pytest

from instructor_integrations import InstructorEncoder


def _cxx_compiler() -> str | None:
    """The C++ compiler Inductor builds its CPU kernels with (it honours $CXX, else looks for one)."""
    import os
    import shutil

    return shutil.which(os.environ.get("CXX", "")) or next(
        (found for name in ("g++", "c++", "clang++") if (found := shutil.which(name))), None
    )


pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(
        _cxx_compiler() is None, reason="torch.compile on the CPU needs a C++ compiler (g++ or clang++)"
    ),
]


@pytest.mark.parametrize("precision", ["exact", "fast"])
def test_compiled_cpu_encoder_matches_the_golden_vectors(tiny_path: str, golden: dict, precision: str) -> None:
    import torch
    from torch._dynamo.utils import counters

    # Graphs compiled earlier in this process for the same model would be reused (on a CPU without bf16,
    # precision="fast" is float32 and compiles exactly the graph "exact" did): start from none.
    torch._dynamo.reset()
    graphs_before = counters["stats"]["unique_graphs"]
    encoder = InstructorEncoder(tiny_path, device="cpu", precision=precision, compile=True)
    reference = np.asarray(golden["pair_embeddings"])
    got = encoder.encode_pairs(golden["pairs"], batch_size=8)  # several shapes: dynamic, one compilation
    # The compiled forward really ran (sentence-transformers calls model.forward, not model(...)).
    assert counters["stats"]["unique_graphs"] > graphs_before
    assert np.isfinite(got).all()
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    if precision == "exact" or encoder.dtype == torch.float32:  # "fast" is float32 on a CPU without bf16
        np.testing.assert_allclose(got, reference, atol=1e-4)
    else:
        assert (got * reference).sum(1).min() >= 0.99


def test_adapters_with_compile_give_the_golden_vectors(tiny_path: str, golden: dict) -> None:
    from instructor_integrations.chroma import InstructorEmbeddingFunction
    from instructor_integrations.langchain import InstructorEmbeddings

    pairs = [pair for pair in golden["pairs"] if pair[0]]
    instruction = pairs[0][0]
    rows = [i for i, pair in enumerate(golden["pairs"]) if pair[0] == instruction]
    texts = [golden["pairs"][i][1] for i in rows]
    reference = np.asarray(golden["pair_embeddings"])[rows]
    lc = InstructorEmbeddings(
        model_name=tiny_path, device="cpu", precision="exact", compile=True, embed_instruction=instruction
    )
    ch = InstructorEmbeddingFunction(
        tiny_path, device="cpu", precision="exact", compile=True, document_instruction=instruction
    )
    assert lc.instructor_encoder is ch.encoder and ch.encoder.compiled
    np.testing.assert_allclose(np.asarray(lc.embed_documents(texts)), reference, atol=1e-4)
    np.testing.assert_allclose(np.asarray(ch(texts)), reference, atol=1e-4)


def test_compiled_worker_compiles_its_multi_row_graph_when_it_starts(tiny_path: str, golden: dict) -> None:
    """A worker's warm-up batch compiles the graph of multi-row batches, so its first real batch does not.

    Runs the pool's process initializer in this process (a spawned worker runs the same code).
    """
    import torch
    from torch._dynamo.utils import counters

    from instructor_integrations import EncoderSettings
    from instructor_integrations._engine import pool as _pool

    plain = InstructorEncoder(tiny_path, device="cpu", precision="exact")  # prepares the rows as the parent does
    settings = plain.settings.replace(compile=True)
    torch._dynamo.reset()  # graphs compiled by earlier tests for the same model would be reused
    graphs_before = counters["stats"]["unique_graphs"]
    try:
        _pool._start_worker(settings, torch.get_num_threads())
        assert counters["stats"]["unique_graphs"] == graphs_before + 1
        instruction = next(pair[0] for pair in golden["pairs"] if pair[0])
        rows = [i for i, pair in enumerate(golden["pairs"]) if pair[0] == instruction][:3]
        assert _pool._WORKER is not None and isinstance(settings, EncoderSettings)
        prompt = plain._prepare(instruction, golden["pairs"][rows[0]][1])[0]
        bodies = [plain._prepare(instruction, golden["pairs"][i][1])[1] for i in rows]
        assert prompt and len({len(b) for b in bodies}) > 1  # an instruction, and rows of different lengths
        got = _pool._embed(prompt, bodies)
        assert counters["stats"]["unique_graphs"] == graphs_before + 1  # no second compilation
        got /= np.linalg.norm(got, axis=1, keepdims=True)
        np.testing.assert_allclose(got, np.asarray(golden["pair_embeddings"])[rows], atol=1e-4)
    finally:
        _pool._WORKER = None
