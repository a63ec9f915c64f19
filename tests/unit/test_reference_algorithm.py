"""Parity on a second checkpoint, against REFERENCE.md implemented independently in this test.

The golden file pins one checkpoint and one set of inputs. Here a different random T5 encoder
(other width, depth, heads and Dense size) is built, and the reference algorithm from
shared/parity/REFERENCE.md is written out with plain transformers + torch, so an encoder tuned to
the fixture would fail.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from instructor_integrations import InstructorEncoder

PAIRS = [
    ["Represent the Medicine question for retrieving a relevant document: ", "  What causes anaemia?  "],
    ["represent the Scientific passage for retrieval; ", "Iron deficiency reduces haemoglobin synthesis."],
    ["Represent the statement, ", "A man is playing a guitar."],
    ["  Represent the Bio-medical statement: ", "Proteins fold into stable structures.\n"],
    ["a ", "single token instruction stays in the pooling"],
    ["", "no instruction at all"],
    ["Represent the question: ", ""],
    ["Represent the question: ", "   "],
    ["Represent the long text: ", "lorem ipsum dolor sit amet " * 200],
    ["Represent the emoji text: ", "Ünïcödé — ok 🙂 数学"],
]


def _build_checkpoint(root: Path, tiny: Path) -> Path:
    from sentence_transformers import SentenceTransformer, models
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(1234)
    config = T5Config(
        vocab_size=1100,
        d_model=48,
        d_kv=8,
        d_ff=96,
        num_layers=3,
        num_heads=6,
        feed_forward_proj="gated-gelu",
        is_encoder_decoder=False,
        use_cache=False,
    )
    raw = root / "t5"
    T5EncoderModel(config).save_pretrained(raw)
    for name in ("spiece.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny / name, raw / name)
    transformer = models.Transformer(str(raw), max_seq_length=512)
    modules = [
        transformer,
        models.Pooling(48, pooling_mode="mean"),
        models.Dense(48, 40, bias=False, activation_function=torch.nn.Identity()),
        models.Normalize(),
    ]
    path = root / "second-checkpoint"
    SentenceTransformer(modules=modules, device="cpu").save(str(path))
    return path


def _reference(path: Path, pairs: list[list[str]]) -> np.ndarray:
    """REFERENCE.md, literally."""
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer, T5EncoderModel

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    encoder = T5EncoderModel.from_pretrained(str(path)).eval()
    dense = SentenceTransformer(str(path), device="cpu")[2].linear.weight.detach()
    max_len = 512
    fulls, counts = [], []
    for instruction, text in pairs:
        text = text.strip()
        fulls.append((instruction + text).strip())
        n = len(tokenizer(instruction.strip(), truncation=True, max_length=max_len)["input_ids"]) - 1
        counts.append(0 if n <= 1 else n)
    batch = tokenizer(fulls, padding="longest", truncation=True, max_length=max_len, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    pool_mask = batch["attention_mask"].clone()
    for row, n in enumerate(counts):
        pool_mask[row, :n] = 0
    mask = pool_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)
    out = pooled @ dense.T
    out = out / out.norm(dim=1, keepdim=True)
    return out.numpy()


@pytest.fixture(scope="module")
def second_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_path: str) -> Path:
    return _build_checkpoint(tmp_path_factory.mktemp("ckpt"), Path(tiny_path))


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_second_checkpoint_matches_reference_algorithm(second_checkpoint: Path, batch_size: int) -> None:
    expected = _reference(second_checkpoint, PAIRS)
    encoder = InstructorEncoder(str(second_checkpoint), device="cpu", instructor_pooling=True)
    assert encoder.embedding_dimension == 40
    got = encoder.encode_pairs(PAIRS, batch_size=batch_size)
    assert np.abs(got - expected).max() <= 1e-5
    reversed_got = encoder.encode_pairs(PAIRS[::-1], batch_size=batch_size)[::-1]
    assert np.abs(reversed_got - expected).max() <= 1e-5


def test_without_instructor_pooling_instruction_is_pooled(second_checkpoint: Path) -> None:
    """instructor_pooling=False: the instruction is an ordinary prefix (plain mean pooling)."""
    encoder = InstructorEncoder(str(second_checkpoint), device="cpu", instructor_pooling=False)
    assert encoder.instructor_pooling is False
    instruction, text = PAIRS[0]
    got = encoder.encode([text], instruction=instruction)
    joined = encoder.encode([(instruction + text.strip()).strip()])
    np.testing.assert_allclose(got, joined, atol=1e-6)
