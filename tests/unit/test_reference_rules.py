"""The torch-free reference rules (split_row, instruction_length, plan_batches) and the encoder's use of them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instructor_integrations import InstructorEncoder, clear_encoder_cache, get_encoder
from instructor_integrations._reference import instruction_length, plan_batches, split_row
from instructor_integrations.encoder import is_instructor_checkpoint


# ---------------------------------------------------------------------- instruction length
@pytest.mark.parametrize(
    ("tokens", "limit", "n"),
    [(0, 512, 0), (1, 512, 0), (2, 512, 0), (3, 512, 2), (8, 512, 7), (512, 512, 511), (513, 512, 511), (9, 4, 3)],
)
def test_instruction_length_rule(tokens: int, limit: int, n: int) -> None:
    assert instruction_length(tokens, limit) == n


# ---------------------------------------------------------------------- split_row
def count_words(instruction: str) -> int:
    """A stand-in tokenizer: one token per word plus </s>, the reference's n rule applied."""
    return instruction_length(len(instruction.split()) + 1, 512)


@settings(max_examples=300, deadline=None)
@given(
    instruction=st.one_of(st.none(), st.text(alphabet=" \tab:.\n", max_size=12)),
    text=st.text(alphabet=" \tcd.\n", max_size=12),
    pooling=st.booleans(),
)
def test_prompt_and_body_concatenate_to_the_reference_input(instruction: str | None, text: str, pooling: bool) -> None:
    prompt, body = split_row(instruction, text, pooling=pooling, instruction_tokens=count_words)
    expected = text.strip() if instruction is None else (instruction + text.strip()).strip()
    assert prompt + body == expected
    if prompt:
        assert pooling and instruction is not None and prompt == instruction.strip()
        assert count_words(prompt) > 0


@pytest.mark.parametrize(
    ("instruction", "text", "pooling", "expected"),
    [
        ("Represent the title: ", "  Deep learning ", True, ("Represent the title:", " Deep learning")),
        ("  Represent the title:", " Deep learning", True, ("Represent the title:", "Deep learning")),
        ("Represent the title: ", "  Deep learning ", False, ("", "Represent the title: Deep learning")),
        ("Q:", "why?", True, ("", "Q:why?")),  # one word: n = 0, the instruction is pooled with the text
        ("   ", "text", True, ("", "text")),  # a blank instruction leaves nothing out
        ("", "text", True, ("", "text")),
        (None, "  text  ", True, ("", "text")),
        ("Represent it: ", "", True, ("Represent it:", "")),
    ],
)
def test_split_row_cases(instruction: str | None, text: str, pooling: bool, expected: tuple[str, str]) -> None:
    assert split_row(instruction, text, pooling=pooling, instruction_tokens=count_words) == expected


# ---------------------------------------------------------------------- plan_batches
@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.tuples(st.sampled_from(["", "p", "q"]), st.integers(1, 700)), max_size=40),
    batch_size=st.integers(1, 9),
    budget=st.one_of(st.none(), st.integers(1, 3000)),
    limit=st.sampled_from([128, 512]),
)
def test_plans_cover_every_row_once_within_the_limits(
    rows: list[tuple[str, int]], batch_size: int, budget: int | None, limit: int
) -> None:
    prompts = [p for p, _ in rows]
    lengths = [n for _, n in rows]
    batches = plan_batches(prompts, lengths, batch_size=batch_size, token_budget=budget, max_seq_length=limit)
    covered = sorted(i for _, members in batches for i in members)
    assert covered == list(range(len(rows)))
    for prompt, members in batches:
        assert members and all(prompts[i] == prompt for i in members)
        assert len(members) <= batch_size
        assert [lengths[i] for i in members] == sorted((lengths[i] for i in members), reverse=True)
        padded = len(members) * min(lengths[members[0]], limit)
        if budget is not None and len(members) > 1:
            assert padded <= budget
    # Each prompt's rows run longest first across its batches too.
    for prompt in set(prompts):
        order = [lengths[i] for p, members in batches if p == prompt for i in members]
        assert order == sorted(order, reverse=True)


def test_the_budget_fills_batches_as_far_as_it_allows() -> None:
    lengths = [100] * 10 + [10] * 10
    batches = plan_batches(["p"] * 20, lengths, batch_size=8, token_budget=400, max_seq_length=512)
    # 400 // 100 = 4 rows while a long row leads a batch; then the short rows fill batch_size.
    assert [len(m) for _, m in batches] == [4, 4, 4, 8]
    capped = plan_batches(["p"] * 3, [5000, 5000, 5000], batch_size=8, token_budget=1024, max_seq_length=512)
    assert [len(m) for _, m in capped] == [2, 1]  # rows count at most max_seq_length tokens


def test_encoder_batches_respect_the_token_budget(tiny_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = InstructorEncoder(tiny_path, device="cpu", token_budget=64, batch_size=16)
    seen: list[tuple[int, int]] = []
    real = encoder._runner.tokenize

    def spy(prompt: str, bodies: list[str]):  # type: ignore[no-untyped-def]
        counts = encoder._token_counts(bodies)
        longest = max(counts) + (encoder._instruction_length(prompt) if prompt else 0)
        seen.append((len(bodies), len(bodies) * longest))
        return real(prompt, bodies)

    monkeypatch.setattr(encoder._runner, "tokenize", spy)
    texts = [("word " * n).strip() for n in (3, 30, 5, 12, 1, 25, 8, 2, 40, 6)]
    encoder.encode(texts, instruction="Represent the sentence: ")
    assert sum(rows for rows, _ in seen) == len(texts)
    assert len(seen) > 1
    assert all(padded <= 64 or rows == 1 for rows, padded in seen), seen


# ---------------------------------------------------------------------- checkpoint detection
@pytest.mark.parametrize(
    ("readme", "expected"),
    [
        ("---\nbase_model: hkunlp/instructor-large\n---\n# A copy\n", True),
        ("This is an INSTRUCTOR-XL mirror.", True),
        ("Fine-tuned from instructor-base on our data.", True),
        ("A sentence-transformers model: all-MiniLM-L6-v2.", False),
        ("We instruct the instructors of the course.", False),
    ],
)
def test_checkpoint_is_recognised_by_its_readme(tmp_path: Path, readme: str, expected: bool) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "README.md").write_text(readme)
    assert is_instructor_checkpoint(str(folder)) is expected


def test_detection_without_a_readme_and_by_path_component(tmp_path: Path) -> None:
    plain = tmp_path / "model"
    plain.mkdir()
    assert not is_instructor_checkpoint(str(plain))
    assert is_instructor_checkpoint(str(tmp_path / "models--hkunlp--instructor-large" / "snapshots" / "abc"))
    assert is_instructor_checkpoint("hkunlp/instructor-base")
    assert not is_instructor_checkpoint("sentence-transformers/all-mpnet-base-v2")


def test_detection_decides_the_pooling(tmp_path: Path, tiny_path: str) -> None:
    """A renamed INSTRUCTOR copy with a README naming it pools like one; without it, plain mean pooling."""
    import shutil

    named = tmp_path / "renamed"
    shutil.copytree(tiny_path, named)
    (named / "README.md").write_text("Copy of hkunlp/instructor-base.\n")
    unnamed = tmp_path / "plain-copy"
    shutil.copytree(tiny_path, unnamed)
    (unnamed / "README.md").unlink(missing_ok=True)
    assert InstructorEncoder(str(named), device="cpu").instructor_pooling is True
    assert InstructorEncoder(str(unnamed), device="cpu").instructor_pooling is False


# ---------------------------------------------------------------------- the shared-encoder cache
def test_relative_and_absolute_paths_share_one_encoder(tiny_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    clear_encoder_cache()
    absolute = get_encoder(os.path.abspath(tiny_path), device="cpu")
    monkeypatch.chdir(Path(tiny_path).parent)
    relative = get_encoder(Path(tiny_path).name, device="cpu")
    dotted = get_encoder("./" + Path(tiny_path).name + "/", device="cpu")
    assert relative is absolute and dotted is absolute
    other = get_encoder(os.path.abspath(tiny_path), device="cpu", batch_size=7)
    assert other is not absolute  # different settings, a different encoder
    assert get_encoder(os.path.abspath(tiny_path), device="cpu", batch_size=32) is absolute  # the default
    clear_encoder_cache()
