"""Token chunking and document sections, with the tiny checkpoint's real tokenizer (no model, no sockets)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from instructor_integrations.chunking import Chunker
from instructor_integrations.loaders import SourceError, read_file, read_html, read_markdown
from tests.conftest import TINY

tokenizers = pytest.importorskip("tokenizers")


def tokenizer():
    counter = tokenizers.Tokenizer.from_file(str(TINY / "tokenizer.json"))
    counter.no_truncation()
    counter.no_padding()
    return counter


TOKENIZER = tokenizer()


def count(text: str) -> int:
    return len(TOKENIZER.encode(text, add_special_tokens=False))


def assert_covers(text: str, chunks) -> None:
    position = 0
    for chunk in chunks:
        assert text[chunk.start : chunk.start + len(chunk.text)] == chunk.text  # offsets are characters
        assert not text[position : chunk.start].strip() or chunk.start < position  # overlap, or only whitespace
        position = max(position, chunk.start + len(chunk.text))
    assert not text[position:].strip()


WORDS = st.sampled_from(["tide", "moon", "潮汐", "Прилив", "المد", "x=1.25;", "\n\n", "```", "#", "|", "  ", "3.14159"])


@settings(max_examples=60, deadline=None)
@given(st.lists(WORDS, max_size=300), st.integers(4, 60), st.booleans())
@example(["\n\n", "tide", "\n\n", "tide"], 8, True)  # Markdown mode kept a leading space (CI found it)
def test_chunks_fit_and_cover_the_text(words, capacity, markdown):
    # The splitter counts tokens in context; a chunk alone can count more where it starts inside a word
    # (SentencePiece adds a word-start token): the check, as the encoder's does, cuts those again.
    text = " ".join(words)
    chunker = Chunker(TOKENIZER, capacity, markdown=markdown, fits=lambda texts: [count(t) <= capacity for t in texts])
    chunks = chunker.split(text)
    assert all(count(chunk.text) <= capacity for chunk in chunks)
    assert all(chunk.text == chunk.text.strip() and chunk.text for chunk in chunks)
    assert_covers(text, chunks)


def test_overlap_is_bounded_and_chunks_still_cover():
    text = " ".join(f"word{i}" for i in range(400))
    chunks = Chunker(TOKENIZER, 40, overlap_tokens=10).split(text)
    assert len(chunks) > 5
    for previous, chunk in itertools.pairwise(chunks):
        shared = text[chunk.start : previous.start + len(previous.text)]
        assert count(shared) <= 10 + 1  # a token may straddle the cut
    assert_covers(text, chunks)


def test_chunks_the_model_would_truncate_are_cut_again():
    checked: list[list[str]] = []

    def fits(texts):
        checked.append(texts)
        return [len(text) <= 50 for text in texts]  # a stricter limit than the splitter's own count

    text = "The moon pulls the sea towards it and the sea rises. " * 20
    chunks = Chunker(TOKENIZER, 60, fits=fits).split(text)
    assert len(checked) > 1  # some were cut again
    assert all(len(chunk.text) <= 50 for chunk in chunks)
    assert_covers(text, chunks)


def test_reserve_leaves_room_for_a_prefix_and_checks_with_it():
    seen: list[str] = []
    chunker = Chunker(TOKENIZER, 50, fits=lambda texts: seen.extend(texts) or [True] * len(texts))
    prefix = "source: tides.md\n\n"
    reserved = chunker.reserve(prefix)
    assert reserved.max_tokens == 50 - count(prefix)
    reserved.split("a few words about tides")
    assert seen and all(text.startswith(prefix) for text in seen)
    assert chunker.reserve("") is chunker
    with pytest.raises(ValueError, match=r"the metadata text takes \d+ tokens, 50 fit in a chunk"):
        chunker.reserve("metadata " * 60)


def test_markdown_mode_keeps_a_fenced_block_whole():
    code = "```python\nprint('tide')\nprint('moon')\n```"
    text = "Intro line about tides.\n\n" + code + "\n\nOutro line about the moon."
    chunks = Chunker(TOKENIZER, count(code) + 2, markdown=True).split_text(text)
    assert code in chunks
    assert Chunker(TOKENIZER, 10).as_markdown().markdown


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_tokens": 0}, "max_tokens must be an int >= 1, got 0"),
        ({"max_tokens": 10, "overlap_tokens": -1}, "overlap_tokens must be an int >= 0, got -1"),
        ({"max_tokens": 10, "overlap_tokens": 10}, "overlap_tokens must be smaller than max_tokens=10, got 10"),
        ({"max_tokens": True}, "max_tokens must be an int >= 1, got True"),
    ],
)
def test_bad_settings_name_the_value(kwargs, message):
    with pytest.raises(ValueError) as info:
        Chunker(TOKENIZER, **kwargs)
    assert str(info.value) == message


def test_split_refuses_a_non_string():
    with pytest.raises(TypeError, match="text must be a str, got int"):
        Chunker(TOKENIZER, 10).split(5)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ sections
def test_markdown_sections_follow_the_heading_path_outside_code():
    text = "Preface.\n# A\nalpha\n```\n# not a heading\n```\n## B\nbeta\n### C\n\n## D\ndelta\n# E\n"
    sections = read_markdown(text)
    # C has no text of its own: it opens D's section; E, the last line, is a section of its own.
    assert [s.metadata.get("heading") for s in sections] == [None, "A", "A > B", "A > D", "E"]
    assert sections[1].text == "# A\nalpha\n```\n# not a heading\n```"
    assert sections[3].text == "### C\n\n## D\ndelta"
    assert all(s.markdown for s in sections)


def test_a_heading_without_text_opens_the_next_section():
    sections = read_markdown("# Key management\n\n## Rotation\n\nRun the rotate command.\n")
    assert [(s.text, s.metadata) for s in sections] == [
        ("# Key management\n\n## Rotation\n\nRun the rotate command.", {"heading": "Key management > Rotation"})
    ]


def test_a_chunk_never_ends_with_a_heading_whose_text_is_in_the_next():
    # Greedy packing put "## Rotation" alone in a chunk, its text in the next (found by a user's search).
    intro = "Intro text here. " * 5
    body = "To rotate the keys, run the rotate command and wait for the replicas. " * 4
    text = f"{intro}\n\n## Rotation\n\n{body}\n\n" + "Old keys stay valid for a day. " * 6
    plain = Chunker(TOKENIZER, 60, markdown=True)
    chunks = plain.split(text)
    assert all(count(chunk.text) <= 60 for chunk in chunks)
    assert_covers(text, chunks)
    assert not any(chunk.text.startswith("## Rotation") and "\n" not in chunk.text for chunk in chunks)
    (opening,) = [chunk for chunk in chunks if "## Rotation" in chunk.text]
    assert opening.text.startswith("## Rotation\n\nTo rotate the keys")
    assert Chunker(TOKENIZER, 60).split(text) != chunks  # plain text mode leaves "#" lines alone


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["tide", "moon", "\n\n## Spring tides\n\n", "\n# Neap\n", "```"]), max_size=200))
def test_in_markdown_a_chunk_ends_with_a_heading_only_before_another_heading(words):
    text = " ".join(words)
    chunks = Chunker(TOKENIZER, 20, markdown=True, fits=lambda texts: [count(t) <= 20 for t in texts]).split(text)
    assert all(count(chunk.text) <= 20 for chunk in chunks)
    assert_covers(text, chunks)
    heading = re.compile(r"^#{1,6}[ \t]+\S")
    for chunk, following in itertools.pairwise(chunks):
        last_line = chunk.start + len(chunk.text) - len(chunk.text.rsplit("\n", 1)[-1])
        in_code = len(re.findall(r"^[ \t]*```", text[:last_line], re.MULTILINE)) % 2
        if not in_code and heading.match(chunk.text.rsplit("\n", 1)[-1]):
            # Only where more headings follow than fit with the text: never a heading cut from its text.
            assert heading.match(following.text), (chunk.text, following.text)


def test_html_keeps_headings_code_and_tables_and_drops_scripts():
    markup = (
        "<html><head><title>T</title></head><body><h1>Tides <em>now</em></h1><p>The moon.</p>"
        "<pre>x = 1\ny = 2</pre><h2>Table</h2><table><tr><td>1</td><td>2</td></tr></table>"
        "<script>alert('no')</script><style>p {}</style></body></html>"
    )
    sections = read_html(markup)
    assert [s.metadata["heading"] for s in sections] == ["Tides now", "Tides now > Table"]
    assert "```\nx = 1\ny = 2\n```" in sections[0].text and "The moon." in sections[0].text
    assert "1 | 2 |" in sections[1].text
    assert not any("alert" in s.text or "p {}" in s.text for s in sections)


def test_read_file_reads_other_suffixes_as_text_and_names_bad_encodings(tmp_path: Path):
    (tmp_path / "notes.log").write_text("  a log line  \n")
    assert [s.text for s in read_file(tmp_path / "notes.log")] == ["a log line"]
    (tmp_path / "blank.txt").write_text("  \n")
    assert read_file(tmp_path / "blank.txt") == []
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(SourceError, match=r"latin1\.txt: not UTF-8 text \(byte 3\)"):
        read_file(tmp_path / "latin1.txt")
