"""Error paths of the encoder: loading, settings, bad input, non-finite outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instructor_integrations import InstructorEncoder, ModelLoadError, NonFiniteEmbeddingError, get_encoder
from instructor_integrations.encoder import is_instructor_checkpoint


def test_missing_hub_model_offline_names_model_and_cache(tmp_path) -> None:
    with pytest.raises(ModelLoadError) as info:
        InstructorEncoder("hkunlp/instructor-large", device="cpu", cache_folder=str(tmp_path), local_files_only=True)
    message = str(info.value)
    assert "'hkunlp/instructor-large'" in message
    assert str(tmp_path) in message
    assert "local copy" in message and "No other model was tried" in message


def _record_loader_kwargs(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Replace sentence-transformers' loader with one that records its arguments and finds nothing."""
    import sentence_transformers

    seen: list[dict] = []

    def loader(name: str, **kwargs: object) -> None:
        seen.append({"name": name, **kwargs})
        raise OSError("not found (recorded)")

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", loader)
    return seen


@pytest.mark.parametrize(("env", "expected"), [("1", True), ("true", True), ("0", False), (None, False)])
def test_hf_hub_offline_env_reaches_the_loader(
    monkeypatch: pytest.MonkeyPatch, tmp_path, env: str | None, expected: bool
) -> None:
    if env is None:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", env)
    seen = _record_loader_kwargs(monkeypatch)
    with pytest.raises(ModelLoadError) as info:
        InstructorEncoder("hkunlp/instructor-base", device="cpu", cache_folder=str(tmp_path))
    assert seen[0]["local_files_only"] is expected
    assert ("only (offline" in str(info.value)) is expected
    seen.clear()
    with pytest.raises(ModelLoadError):  # an explicit setting wins over the environment
        InstructorEncoder("hkunlp/instructor-base", device="cpu", local_files_only=not expected)
    assert seen[0]["local_files_only"] is (not expected)


@pytest.mark.parametrize(("kwargs", "expected"), [({}, False), ({"trust_remote_code": True}, True)])
def test_trust_remote_code_reaches_the_loader_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict, expected: bool
) -> None:
    seen = _record_loader_kwargs(monkeypatch)
    with pytest.raises(ModelLoadError):
        InstructorEncoder("some/model", device="cpu", **kwargs)
    assert seen[0]["trust_remote_code"] is expected


def test_bad_local_folder_is_named(tmp_path) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="the local folder"):
        InstructorEncoder(str(folder), device="cpu")


@pytest.mark.parametrize("bad", [None, "", "   ", 42])
def test_bad_model_name(bad: object) -> None:
    with pytest.raises(TypeError, match="model_name_or_path"):
        InstructorEncoder(bad, device="cpu")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": "8"}, "batch_size"),
        ({"max_seq_length": -1}, "max_seq_length"),
        ({"token_budget": 0}, "token_budget"),
        ({"instructor_pooling": "yes"}, "instructor_pooling"),
        ({"trust_remote_code": "no"}, "trust_remote_code"),
        ({"compile": 1}, "compile must be True or False, got 1"),
        ({"num_workers": 0}, "num_workers must be a positive int, got 0"),
        ({"num_workers": 2.0}, "num_workers must be a positive int, got 2.0"),
        ({"dtype": "fp8"}, "dtype"),
        ({"device": "gpu"}, "device"),
    ],
)
def test_bad_settings(tiny_path: str, kwargs: dict, match: str) -> None:
    with pytest.raises((TypeError, ValueError), match=match):
        InstructorEncoder(tiny_path, **kwargs)


def test_instructor_detection(tiny_path: str) -> None:
    assert is_instructor_checkpoint(tiny_path)  # folder name
    assert is_instructor_checkpoint("/cache/models--hkunlp--instructor-large/snapshots/abc")
    assert not is_instructor_checkpoint("sentence-transformers/all-MiniLM-L6-v2")


def test_defaults_for_instructor_checkpoint(tiny_encoder: InstructorEncoder) -> None:
    assert tiny_encoder.instructor_pooling is True
    assert tiny_encoder.max_seq_length == 512
    assert tiny_encoder.dtype == torch.float32 and tiny_encoder.precision == "exact"
    assert tiny_encoder.embedding_dimension == 24


def test_empty_batch_does_not_touch_model(tiny_encoder: InstructorEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("model called")

    monkeypatch.setattr(tiny_encoder.model, "encode", boom)
    out = tiny_encoder.encode([])
    assert out.shape == (0, 24) and out.dtype == np.float32
    assert tiny_encoder.encode_pairs([]).shape == (0, 24)


def test_empty_and_whitespace_texts_follow_reference(tiny_encoder: InstructorEncoder) -> None:
    out = tiny_encoder.encode(["", "   ", "\n\t"], instruction="Represent the sentence: ")
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    np.testing.assert_allclose(out[0], out[2], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_long_text_is_truncated_and_logged(tiny_encoder: InstructorEncoder, caplog: pytest.LogCaptureFixture) -> None:
    long = "word " * 2000
    with caplog.at_level("WARNING", logger="instructor_integrations.encoder"):
        out = tiny_encoder.encode([long, long + "more words here"], instruction="Represent the text: ")
    assert "2 of 2 texts are longer than max_seq_length=512" in caplog.text
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)  # both cut at 512 tokens


def test_float16_overflow_raises_not_nan(tiny_path: str) -> None:
    encoder = InstructorEncoder(tiny_path, device="cpu", dtype="float16")
    # Activations beyond float16's range (65504), as a T5 encoder produces in float16.
    with torch.no_grad():
        encoder.model[2].linear.weight.fill_(60000.0)
    with pytest.raises(NonFiniteEmbeddingError, match="float16") as info:
        encoder.encode(["overflow me please"] * 3)
    assert "bfloat16" in str(info.value)


def test_shared_encoder_cache(tiny_path: str) -> None:
    a = get_encoder(tiny_path, device="cpu")
    assert get_encoder(tiny_path, device=None if not torch.cuda.is_available() else "cpu") is a
    assert get_encoder(tiny_path, device="cpu", dtype="auto") is a
    # The constructor's own defaults, given explicitly, do not split the cache.
    assert get_encoder(tiny_path, device="cpu", compile=False, batch_size=32) is a
    assert get_encoder(tiny_path, device="cpu", token_budget="auto", precision=None) is a
    # token_budget=None is a setting of its own (no cap), not "the default".
    uncapped = get_encoder(tiny_path, device="cpu", token_budget=None)
    assert uncapped is not a
    assert uncapped.token_budget is None
    assert a.token_budget is not None
    assert get_encoder(tiny_path, device="cpu", precision="exact") is not a
