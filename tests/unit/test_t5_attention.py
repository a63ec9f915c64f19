"""The T5 attention that builds its bias-and-padding mask once per forward pass (used on CUDA).

It must give transformers' SDPA results bit for bit, build the mask once instead of once per layer,
keep nothing alive between forward passes, keep threads apart, and leave other models alone.
"""

from __future__ import annotations

import threading
import types

import numpy as np
import pytest
import torch
from transformers.integrations import sdpa_attention

from instructor_integrations import InstructorEncoder
from instructor_integrations._engine import t5 as _t5

from ..conftest import TINY

TEXTS = [
    "A short one.",
    "A much longer text about relative position buckets, padding masks and attention layers in T5 encoders.",
    "",
    "Middle length text with some words.",
]


@pytest.fixture
def pair() -> tuple[InstructorEncoder, InstructorEncoder]:
    """Two encoders on the test checkpoint: transformers' SDPA attention, and the shared-mask one."""
    plain = InstructorEncoder(str(TINY), device="cpu")
    shared = InstructorEncoder(str(TINY), device="cpu")
    assert _t5.share_t5_attention_mask(shared.model[0].auto_model)
    return plain, shared


def _inputs(encoder: InstructorEncoder, texts: list[str]) -> dict[str, torch.Tensor]:
    batch = encoder.model.tokenizer(texts, padding=True, return_tensors="pt")
    assert not bool(batch["attention_mask"].all()), "the test needs padding"
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def test_the_cpu_encoder_keeps_transformers_sdpa(tiny_encoder: InstructorEncoder) -> None:
    assert tiny_encoder.model[0].auto_model.config._attn_implementation == "sdpa"


def test_same_hidden_states_and_embeddings_bit_for_bit(pair: tuple[InstructorEncoder, InstructorEncoder]) -> None:
    plain, shared = pair
    assert shared.model[0].auto_model.config._attn_implementation == _t5.ATTENTION_NAME
    inputs = _inputs(plain, TEXTS)
    with torch.inference_mode():
        expected = plain.model[0].auto_model(**inputs).last_hidden_state
        got = shared.model[0].auto_model(**inputs).last_hidden_state
    assert torch.equal(got, expected)
    instruction = "Represent the sentence for retrieval: "
    assert np.array_equal(shared.encode(TEXTS, instruction), plain.encode(TEXTS, instruction))


def test_mask_built_once_per_forward_pass_and_released(
    pair: tuple[InstructorEncoder, InstructorEncoder], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, shared = pair
    layers = shared.model[0].auto_model.config.num_layers
    assert layers >= 2
    per_layer = {"calls": 0}
    original = sdpa_attention.create_position_bias_mask

    def counting(*args: object, **kwargs: object) -> torch.Tensor:
        per_layer["calls"] += 1
        return original(*args, **kwargs)  # type: ignore[arg-type]

    built = {"calls": 0}
    where = torch.where

    def counting_where(*args: object, **kwargs: object) -> torch.Tensor:
        if len(args) > 1 and isinstance(args[1], torch.Tensor) and args[1].ndim == 4:  # the (1, H, L, L) bias
            built["calls"] += 1
        return where(*args, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(sdpa_attention, "create_position_bias_mask", counting)
    inputs = _inputs(plain, TEXTS)
    with torch.inference_mode():
        plain.model[0].auto_model(**inputs)
        assert per_layer["calls"] == layers  # transformers: once per layer
        per_layer["calls"] = 0
        monkeypatch.setattr(_t5.torch, "where", counting_where)
        shared.model[0].auto_model(**inputs)
        shared.model[0].auto_model(**inputs)
    assert per_layer["calls"] == 0
    assert built["calls"] == 2  # once per forward pass
    assert getattr(_t5._state, "entry", None) is None  # nothing kept between forward passes


def test_without_padding_the_sdpa_path_is_unchanged(pair: tuple[InstructorEncoder, InstructorEncoder]) -> None:
    plain, shared = pair
    batch = plain.model.tokenizer(["same length", "same length"], return_tensors="pt")
    with torch.inference_mode():
        expected = plain.model[0].auto_model(**batch).last_hidden_state
        got = shared.model[0].auto_model(**batch).last_hidden_state
    assert torch.equal(got, expected)


def test_threads_keep_their_own_mask(pair: tuple[InstructorEncoder, InstructorEncoder]) -> None:
    """Forward passes may run in several threads at once (encoders sharing a process, callers driving their
    own); each must use the mask of its own batch."""
    plain, shared = pair
    batches = [_inputs(plain, TEXTS), _inputs(plain, [TEXTS[1], TEXTS[2]]), _inputs(plain, TEXTS[::-1])]
    with torch.inference_mode():
        expected = [plain.model[0].auto_model(**b).last_hidden_state for b in batches]
    errors: list[str] = []
    barrier = threading.Barrier(len(batches))

    def run(index: int) -> None:
        barrier.wait()
        with torch.inference_mode():
            for _ in range(20):
                got = shared.model[0].auto_model(**batches[index]).last_hidden_state
                if not torch.equal(got, expected[index]):
                    errors.append(f"batch {index} differs")
                    return

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.parametrize(
    "config",
    [
        types.SimpleNamespace(model_type="bert", _attn_implementation="sdpa"),
        types.SimpleNamespace(model_type="t5", _attn_implementation="eager"),
        types.SimpleNamespace(model_type="t5", _attn_implementation="sdpa", is_decoder=True),
    ],
)
def test_other_models_and_settings_are_left_alone(config: types.SimpleNamespace) -> None:
    backbone = types.SimpleNamespace(config=config)
    assert _t5.share_t5_attention_mask(backbone) is False
    assert config._attn_implementation in ("sdpa", "eager")
    assert _t5.share_t5_attention_mask(None) is False


def test_compiles_as_one_graph(pair: tuple[InstructorEncoder, InstructorEncoder]) -> None:
    """torch.compile (compile=True) must trace the shared-mask attention without graph breaks."""
    import torch._dynamo

    plain, shared = pair
    inputs = _inputs(plain, TEXTS)
    torch._dynamo.reset()
    with torch.inference_mode():
        explained = torch._dynamo.explain(shared.model[0].auto_model.forward)(**inputs)
    torch._dynamo.reset()
    assert explained.graph_break_count == 0
    assert explained.graph_count == 1
