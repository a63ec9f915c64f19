"""Reading and chunking inputs: chunk_text's guarantees, JSONL rows, folders and unreadable files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from instructor_integrations.sources import BadInput, SourceError, chunk_text, iter_paths, read_records
from instructor_integrations.vectorstores import content_id

# Distinct words, so that the overlap between two chunks can be read off unambiguously.
WORDS = st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=15), max_size=60, unique=True)


@settings(max_examples=300, deadline=None)
@given(words=WORDS, size=st.integers(15, 60), data=st.data())
def test_chunks_fit_cover_every_word_in_order_and_overlap_within_the_limit(
    words: list[str], size: int, data: st.DataObject
) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    text = " \n ".join(words)
    chunks = chunk_text(text, chunk_size=size, chunk_overlap=overlap)
    pieces = words
    assert all(0 < len(chunk) <= size for chunk in chunks)
    assert (chunks == []) == (pieces == [])
    # Reassemble: each chunk starts with some of the previous chunk's last words (the overlap), then goes on.
    rebuilt: list[str] = []
    for chunk in chunks:
        words_in = chunk.split(" ")
        shared = next(n for n in range(len(words_in), -1, -1) if n == 0 or rebuilt[-n:] == words_in[:n])
        if rebuilt:
            assert sum(len(w) for w in words_in[:shared]) <= overlap
            assert shared < len(words_in)  # every chunk adds something new
        rebuilt.extend(words_in[shared:])
    assert rebuilt == pieces


def test_chunk_text_examples() -> None:
    assert chunk_text("aaa bbb ccc", chunk_size=7, chunk_overlap=0) == ["aaa bbb", "ccc"]
    assert chunk_text("aaa bbb ccc", chunk_size=7, chunk_overlap=3) == ["aaa bbb", "bbb ccc"]
    assert chunk_text("abcdefghij", chunk_size=4, chunk_overlap=0) == ["abcd", "efgh", "ij"]
    assert chunk_text("   \n\t ", chunk_size=4, chunk_overlap=0) == []
    assert chunk_text("exactly7", chunk_size=8, chunk_overlap=0) == ["exactly7"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"chunk_size": 0}, "chunk_size must be a positive int"),
        ({"chunk_size": 10, "chunk_overlap": 10}, r"chunk_overlap must be an int in \[0, chunk_size=10\), got 10"),
        ({"chunk_size": 10, "chunk_overlap": -1}, "chunk_overlap"),
        ({"chunk_size": 10, "chunk_overlap": True}, "chunk_overlap"),
        ({"chunk_size": 10, "chunk_overlap": 2.0}, "chunk_overlap"),
    ],
)
def test_bad_chunk_settings(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        chunk_text("text", **kwargs)
    with pytest.raises(ValueError, match=match):
        list(read_records([], **kwargs))  # checked before any file is read


def jsonl(path: Path, *rows: object) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def test_jsonl_rows(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "rows.jsonl",
        {"id": "r1", "title": "Bees", "text": "Bees dance.", "lang": "en", "metadata": {"year": 2020}},
        "",
        {"_id": 7, "text": "Second row.", "tags": ["dropped"], "score": 0.5},
        {"text": "No id here."},
    )
    records = list(read_records([path]))
    assert [r.text for r in records] == ["Bees Bees dance.", "Second row.", "No id here."]
    where = str(path.resolve())
    assert records[0].id == "r1"
    assert records[0].metadata == {"source": f"{where}:1", "lang": "en", "year": 2020, "chunk": 0}
    assert records[1].id == "7" and records[1].metadata == {"source": f"{where}:3", "score": 0.5, "chunk": 0}
    assert records[2].id == content_id("No id here.", records[2].metadata)
    assert records[2].metadata == {"source": f"{where}:4", "chunk": 0}


def test_a_long_jsonl_row_gets_numbered_chunk_ids(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "long.jsonl", {"id": "doc", "text": "word " * 100})
    records = list(read_records([path], chunk_size=100, chunk_overlap=0))
    assert len(records) > 1
    assert [r.id for r in records] == [f"doc#{i}" for i in range(len(records))]
    assert [r.metadata["chunk"] for r in records] == list(range(len(records)))


def test_an_empty_jsonl_text_is_one_empty_record(tmp_path: Path) -> None:
    records = list(read_records([jsonl(tmp_path / "e.jsonl", {"id": "e", "text": "  "})]))
    assert [(r.id, r.text) for r in records] == [("e", "")]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"text": broken}', "malformed JSON"),
        ('["text"]', "expected a JSON object, got list"),
        ('{"title": "t"}', "missing a string 'text' field"),
        ('{"text": 3}', "missing a string 'text' field"),
        ('{"text": "t", "title": [1]}', "'title' must be a string"),
        ('{"text": "t", "id": {"a": 1}}', "'id' must be a string"),
    ],
)
def test_bad_jsonl_lines_name_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    path = jsonl(tmp_path / "bad.jsonl", {"text": "fine"}, line, {"text": "also fine"})
    with pytest.raises(SourceError, match=f"{path.name}:2: {reason}"):
        list(read_records([path]))
    bad: list[BadInput] = []
    records = list(read_records([path], skip_bad=True, bad=bad))
    assert [r.text for r in records] == ["fine", "also fine"]
    assert len(bad) == 1 and bad[0].where.endswith("bad.jsonl:2") and reason in bad[0].reason


def test_text_files_folders_and_suffixes(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("a.md", "b/c.TXT", "b/d.rst", "e.markdown", "f.text", "g.ndjson", "skip.bin", "skip.py"):
        (tmp_path / name).write_text('{"text": "row"}' if name.endswith("json") else "text of " + name)
    found = [p.relative_to(tmp_path.resolve()).as_posix() for p in iter_paths([tmp_path])]
    assert found == ["a.md", "b/c.TXT", "b/d.rst", "e.markdown", "f.text", "g.ndjson"]
    # A file named directly is read whatever its suffix.
    assert [p.name for p in iter_paths([tmp_path / "skip.py"])] == ["skip.py"]
    records = list(read_records([tmp_path / "a.md"]))
    assert len(records) == 1
    assert records[0].metadata == {"source": str((tmp_path / "a.md").resolve()), "section": 0, "chunk": 0}
    assert records[0].id == content_id("text of a.md", records[0].metadata)


def test_missing_and_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"'nope\.txt' does not exist"):
        list(iter_paths(["nope.txt"]))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café".encode("latin-1"))
    good = tmp_path / "good.txt"
    good.write_text("good text")
    with pytest.raises(SourceError, match=r"latin.txt: not UTF-8 text \(byte 3\)"):
        list(read_records([latin, good]))
    bad: list[BadInput] = []
    assert [r.text for r in read_records([latin, good], skip_bad=True, bad=bad)] == ["good text"]
    assert [b.where for b in bad] == [str(latin.resolve())]


def test_a_file_that_cannot_be_read_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked.txt"
    locked.write_text("secret")
    real = Path.read_text

    def refuse(self: Path, *args: object, **kwargs: object) -> str:
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", refuse)  # root reads any file: a permission error is simulated
    with pytest.raises(SourceError, match=r"locked.txt: cannot be read \(Permission denied\)"):
        list(read_records([locked]))


def test_defaults_are_1000_characters_with_200_shared() -> None:
    words = [f"w{i:03d}" for i in range(400)]  # 4 characters each, 5 with the space
    chunks = chunk_text(" ".join(words))
    assert [len(c) for c in chunks[:-1]] == [999] * (len(chunks) - 1)  # 200 words of 4 plus 199 spaces
    second = chunks[1].split()
    assert second[0] == words[200 - 50]  # 50 shared words: 200 characters
    records = list(read_records_of(" ".join(words)))
    assert [r.text for r in records] == chunks


def read_records_of(text: str):  # type: ignore[no-untyped-def]
    import tempfile

    folder = Path(tempfile.mkdtemp())
    (folder / "t.txt").write_text(text)
    return read_records([folder / "t.txt"])


def test_a_non_dict_metadata_field_is_not_kept(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "m.jsonl", {"text": "t", "metadata": "a note", "n": 1})
    (record,) = read_records([path])
    assert record.metadata == {"source": f"{path.resolve()}:1", "n": 1, "chunk": 0}


def test_skipped_files_keep_their_reason(tmp_path: Path) -> None:
    bad_file = tmp_path / "latin.txt"
    bad_file.write_bytes("café".encode("latin-1"))
    bad: list[BadInput] = []
    assert list(read_records([bad_file], skip_bad=True, bad=bad)) == []
    assert bad == [
        BadInput(str(bad_file.resolve()), f"{bad_file.resolve()}: not UTF-8 text (byte 3); convert it to UTF-8 first")
    ]


def test_a_bad_jsonl_field_shows_its_value(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "v.jsonl", {"text": "t", "title": ["a", "list"]})
    with pytest.raises(SourceError, match=r"'title' must be a string, got \['a', 'list'\]"):
        list(read_records([path]))


def test_the_default_limits_are_exactly_1000_and_200() -> None:
    assert len(chunk_text("a" * 999 + " b")) == 2  # 1,001 characters: one more than a chunk holds
    assert chunk_text("a" * 998 + " b") == ["a" * 998 + " b"]
    # A 201-character word is not shared with the next chunk; a 200-character one is.
    assert chunk_text("a" * 700 + " " + "b" * 201 + " " + "c" * 300)[1] == "c" * 300
    assert chunk_text("a" * 700 + " " + "b" * 200 + " " + "c" * 300)[1] == "b" * 200 + " " + "c" * 300
    text = "a" * 700 + " " + "b" * 201 + " " + "c" * 300
    assert [r.text for r in read_records_of(text)] == chunk_text(text)
    # The shared words stay when they and the next new word fit, whatever comes after that word.
    four = "a" * 700 + " " + "b" * 200 + " " + "c" * 300 + " " + "d" * 500
    assert chunk_text(four)[1] == "b" * 200 + " " + "c" * 300


def test_skip_bad_without_a_list_still_skips(tmp_path: Path) -> None:
    bad_file = tmp_path / "latin.txt"
    bad_file.write_bytes("café".encode("latin-1"))
    assert list(read_records([bad_file], skip_bad=True)) == []
