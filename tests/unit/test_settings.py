"""EncoderSettings: declared once, checked once, the key of the shared encoder, what workers are built from."""

from __future__ import annotations

import dataclasses
import inspect
import os

import numpy as np
import pytest
import torch

from instructor_integrations import EncoderSettings, InstructorEncoder, clear_encoder_cache, get_encoder


def test_the_constructor_takes_exactly_the_settings_with_the_same_defaults() -> None:
    parameters = inspect.signature(InstructorEncoder.__init__).parameters
    constructor = {name: p.default for name, p in parameters.items() if name != "self"}
    declared = {field.name: field.default for field in dataclasses.fields(EncoderSettings)}
    assert constructor == declared


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("model_name_or_path", "  ", "model_name_or_path must be a non-empty str or path"),
        ("device", 0, "device must be None or a str"),
        ("dtype", "int8", "dtype must be one of 'auto', 'float32', 'bfloat16', 'float16', got 'int8'"),
        ("precision", "quick", "precision must be None, 'exact', 'fast' or 'int8', got 'quick'"),
        ("max_seq_length", 0, "max_seq_length must be a positive int, got 0"),
        ("batch_size", True, "batch_size must be a positive int, got True"),
        ("token_budget", "big", "token_budget \\(or 'auto'\\) must be a positive int, got 'big'"),
        ("cache_folder", 1.5, "cache_folder must be None or a path, got 1.5"),
        ("local_files_only", "no", "local_files_only must be None, True or False, got 'no'"),
        ("trust_remote_code", None, "trust_remote_code must be True or False, got None"),
        ("instructor_pooling", 1, "instructor_pooling must be None, True or False, got 1"),
        ("show_progress_bar", "y", "show_progress_bar must be None, True or False, got 'y'"),
        ("compile", "yes", "compile must be True or False, got 'yes'"),
        ("num_workers", 0, "num_workers must be a positive int, got 0"),
    ],
)
def test_a_bad_value_is_refused_naming_the_setting(field: str, value: object, message: str) -> None:
    assert field in EncoderSettings.names()
    with pytest.raises((TypeError, ValueError), match=message):
        EncoderSettings(**{"model_name_or_path": "m", field: value})
    # The constructor refuses it the same way, before anything is loaded.
    kwargs = {"model_name_or_path": "/nonexistent/model", field: value}
    with pytest.raises((TypeError, ValueError), match=message):
        InstructorEncoder(**kwargs)  # type: ignore[arg-type]


def test_dtype_and_precision_together_are_refused() -> None:
    with pytest.raises(ValueError, match="pass either dtype='bfloat16' or precision='exact', not both"):
        EncoderSettings("m", dtype="bfloat16", precision="exact")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"compile": True}, "compile=True does not apply to precision='int8'"),
        ({"device": "cuda"}, "precision='int8' runs on the CPU only \\(ONNX Runtime\\), got device='cuda'"),
        ({"dtype": "bfloat16"}, "pass either dtype='bfloat16' or precision='int8'"),
    ],
)
def test_int8_refuses_what_it_cannot_honour(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncoderSettings("m", precision="int8", **changes)
    EncoderSettings("m", precision="int8", device="cpu")  # the CPU is its device


def test_settings_are_frozen_hashable_and_replace_checks_the_change() -> None:
    settings = EncoderSettings("m", device="cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.device = "cuda"  # type: ignore[misc]
    assert hash(settings) == hash(EncoderSettings("m", device="cpu"))
    assert settings.replace(batch_size=8) == EncoderSettings("m", device="cpu", batch_size=8)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got -1"):
        settings.replace(batch_size=-1)
    with pytest.raises(TypeError, match="unknown encoder setting\\(s\\) 'batchsize'; the settings are: model_name"):
        EncoderSettings.from_kwargs(model_name_or_path="m", batchsize=8)


def test_resolved_settings_rebuild_an_encoder_with_the_same_vectors(tiny_path: str, golden: dict) -> None:
    encoder = InstructorEncoder(tiny_path, device=torch.device("cpu"), dtype=torch.float32, batch_size=5)
    settings = encoder.settings
    assert (settings.device, settings.dtype, settings.instructor_pooling) == ("cpu", "float32", True)
    assert (settings.max_seq_length, settings.batch_size, settings.token_budget) == (512, 5, encoder.token_budget)
    assert isinstance(settings.local_files_only, bool)
    again = InstructorEncoder.from_settings(settings)
    assert again.settings == settings
    pairs = golden["pairs"][:20]
    np.testing.assert_array_equal(again.encode_pairs(pairs), encoder.encode_pairs(pairs))
    np.testing.assert_allclose(again.encode_pairs(pairs), np.asarray(golden["pair_embeddings"][:20]), atol=1e-5)
    # The settings follow the model's limit when it is changed on the model.
    encoder.model.max_seq_length = 64
    assert encoder.settings.max_seq_length == 64
    # The others are fixed for the encoder's life: the queue plans every batch with them.
    for name, value in (("batch_size", 7), ("token_budget", 99), ("instructor_pooling", False), ("plan", None)):
        with pytest.raises(AttributeError, match=rf"'{name}' is fixed when an InstructorEncoder is built.*replace"):
            setattr(encoder, name, value)
    assert (encoder.batch_size, encoder.settings.batch_size, encoder.instructor_pooling) == (5, 5, True)
    with pytest.raises(TypeError, match="settings must be an EncoderSettings, got dict"):
        InstructorEncoder.from_settings({"model_name_or_path": tiny_path})  # type: ignore[arg-type]


def test_get_encoder_keys_on_the_settings_with_paths_devices_and_defaults_resolved(tiny_path: str) -> None:
    clear_encoder_cache()
    try:
        first = get_encoder(tiny_path, device="cpu")
        relative = os.path.relpath(tiny_path)
        assert get_encoder(EncoderSettings(tiny_path, device="cpu")) is first
        assert get_encoder(relative, device=torch.device("cpu")) is first
        assert get_encoder(tiny_path, device="cpu", dtype=torch.float32, precision=None) is get_encoder(
            tiny_path, device="cpu", dtype="float32"
        )
        assert get_encoder(tiny_path, device="cpu", dtype=None, batch_size=None) is first  # None: the default
        uncapped = get_encoder(tiny_path, device="cpu", token_budget=None)  # None is a setting of its own here
        assert uncapped is not first and uncapped.token_budget is None
        assert get_encoder(EncoderSettings(tiny_path), device="cpu", token_budget=None) is uncapped
        with pytest.raises(TypeError, match="unknown encoder setting\\(s\\) 'pooling'"):
            get_encoder(tiny_path, device="cpu", pooling=True)
    finally:
        clear_encoder_cache()
