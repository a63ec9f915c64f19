"""``INSTRUCTOR``: the original package's inference API gives the reference's golden vectors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from instructor_integrations import INSTRUCTOR, InstructorEncoder, get_encoder


@pytest.fixture(scope="module")
def model(tiny_path: str) -> INSTRUCTOR:
    return INSTRUCTOR(tiny_path, device="cpu")


@pytest.fixture(scope="module")
def plain_copy(tiny_path: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint in a folder whose name does not say INSTRUCTOR (not detected as one)."""
    folder = tmp_path_factory.mktemp("copy") / "my-embedder"
    shutil.copytree(tiny_path, folder)
    return folder


def test_pairs_and_plain_texts_give_the_golden_vectors(model: INSTRUCTOR, golden: dict) -> None:
    pairs = model.encode(golden["pairs"], batch_size=8)
    np.testing.assert_allclose(pairs, np.asarray(golden["pair_embeddings"]), atol=1e-5)
    plain = model.encode(golden["plain"])
    np.testing.assert_allclose(plain, np.asarray(golden["plain_embeddings"]), atol=1e-5)
    assert pairs.dtype == np.float32 and pairs.shape == (len(golden["pairs"]), model.get_sentence_embedding_dimension())


def test_one_string_gives_one_vector(model: INSTRUCTOR, golden: dict) -> None:
    vector = model.encode(golden["plain"][2])
    assert vector.shape == (24,)
    np.testing.assert_allclose(vector, np.asarray(golden["plain_embeddings"][2]), atol=1e-5)


def test_tensor_outputs(model: INSTRUCTOR, golden: dict) -> None:
    reference = np.asarray(golden["pair_embeddings"][:3])
    stacked = model.encode(golden["pairs"][:3], convert_to_tensor=True)
    assert isinstance(stacked, torch.Tensor) and stacked.shape == (3, 24) and stacked.device == model.device
    np.testing.assert_allclose(stacked.numpy(), reference, atol=1e-5)
    rows = model.encode(golden["pairs"][:3], convert_to_numpy=False)
    assert isinstance(rows, list) and len(rows) == 3 and all(isinstance(row, torch.Tensor) for row in rows)
    np.testing.assert_allclose(torch.stack(rows).numpy(), reference, atol=1e-5)


def test_the_model_device_may_be_named_in_encode(model: INSTRUCTOR, golden: dict) -> None:
    for device in ("cpu", torch.device("cpu")):
        np.testing.assert_allclose(
            model.encode(golden["plain"][:2], device=device), np.asarray(golden["plain_embeddings"][:2]), atol=1e-5
        )


def test_empty_input_gives_no_rows(model: INSTRUCTOR) -> None:
    assert model.encode([]).shape == (0, 24)


def test_instructions_are_left_out_of_the_pooling_for_any_checkpoint(plain_copy: Path, golden: dict) -> None:
    """Like the original class; a plain InstructorEncoder on the same folder pools the instruction too."""
    pairs = [pair for pair in golden["pairs"] if len(pair[0].split()) > 1][:4]
    rows = [golden["pairs"].index(pair) for pair in pairs]
    reference = np.asarray(golden["pair_embeddings"])[rows]
    model = INSTRUCTOR(str(plain_copy), device="cpu")
    assert model.encoder.instructor_pooling
    np.testing.assert_allclose(model.encode(pairs), reference, atol=1e-5)
    detected = InstructorEncoder(str(plain_copy), device="cpu")
    assert not detected.instructor_pooling
    assert np.abs(detected.encode_pairs(pairs) - reference).max() > 1e-3


def test_shares_the_model_with_the_adapters_when_the_name_says_instructor(tiny_path: str) -> None:
    assert INSTRUCTOR(tiny_path, device="cpu").encoder is get_encoder(tiny_path, device="cpu")


def test_normalize_embeddings(plain_copy: Path, tmp_path: Path, golden: dict) -> None:
    """On a checkpoint without a normalisation layer, only normalize_embeddings=True gives unit vectors."""
    folder = tmp_path / "no-normalize"
    shutil.copytree(plain_copy, folder)
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps([m for m in modules if not m["type"].endswith("Normalize")]))
    model = INSTRUCTOR(str(folder), device="cpu")
    raw = model.encode(golden["pairs"][:4])
    unit = model.encode(golden["pairs"][:4], normalize_embeddings=True)
    norms = np.linalg.norm(raw, axis=1)
    assert np.abs(norms - 1).max() > 1e-2
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(unit, raw / norms[:, None], atol=1e-6)
    np.testing.assert_allclose(unit, np.asarray(golden["pair_embeddings"][:4]), atol=1e-5)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda m: m.encode(["x"], output_value="token_embeddings"),
            ValueError,
            "'token_embeddings'.*'sentence_embedding'",
        ),
        (lambda m: m.encode(["x"], device="cuda"), ValueError, "device='cuda' differs from the model's device 'cpu'"),
        (lambda m: m.encode(["x"], device="gpu"), ValueError, "device='gpu' is not a torch device"),
        (lambda m: m.encode([["Represent:", "x"], "y"]), TypeError, r"sentences\[1\] must be an \[instruction, text\]"),
        (lambda m: m.encode(["y", ["Represent:", "x"]]), TypeError, r"sentences\[1\] must be a str, got list"),
        (lambda m: m.encode([["Represent:", "x", "z"]]), ValueError, r"sentences\[0\] must have exactly 2 items"),
        (lambda m: m.encode(None), TypeError, "sentences must be a list of str, got None"),
        (lambda m: m.encode(["x"], convert_to_numpy="yes"), TypeError, "convert_to_numpy must be True or False"),
    ],
)
def test_bad_input_is_named(model: INSTRUCTOR, call, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call(model)
