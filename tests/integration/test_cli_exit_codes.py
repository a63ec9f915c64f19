"""instructor-embed's exit codes and option conflicts: 0 ok, 1 failed at run time, 2 bad usage, 130 interrupted.

Every usage error is refused before anything is written: the store folder is not even created.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("chromadb")

from instructor_integrations import cli
from instructor_integrations.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, main

from ..conftest import FIXTURES, TINY

pytestmark = pytest.mark.integration


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "doc.txt"
    path.write_text("Tides are caused by the moon.")
    return path


def ingest(db: Path, doc: Path, *extra: str) -> list[str]:
    model = ["--model", str(TINY), "--device", "cpu", "--no-progress"]
    return ["ingest", str(doc), "--collection", "notes", "--db", str(db), *model, *extra]


USAGE_ERRORS = [
    (
        ["--task", "SciFact", "--document-instruction", "Represent: "],
        "give either --task or --document-instruction, not both",
    ),
    (
        ["--task", "SciFact", "--doc-instruction", "Represent: "],
        "give either --task or --document-instruction, not both",
    ),
    (["--host", "127.0.0.1"], "give either --db (embedded Chroma) or --host/--port"),
    (["--ray"], "--ray writes to a Chroma server: give --host"),
    (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
    (["--chunk-tokens", "100", "--chunk-overlap-tokens", "100"], "--chunk-overlap-tokens must be >= 0 and below"),
    (["--chunk-tokens", "0"], "--chunk-tokens must be a positive integer, got 0"),
    (["--chunk-tokens", "5000"], "max_tokens=5000 does not fit: with this instruction a chunk has room for"),
    (
        ["--chunk-size", "1000"],
        "--chunk-size and --chunk-overlap counted characters and were replaced by --chunk-tokens",
    ),
    (["--task", "NoSuchDataset"], "NoSuchDataset"),
]


@pytest.mark.parametrize(("extra", "message"), USAGE_ERRORS, ids=[m[:30] for _, m in USAGE_ERRORS])
def test_ingest_usage_errors_write_nothing(
    tmp_path: Path, doc: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    db = tmp_path / "db"
    assert main(ingest(db, doc, *extra)) == EXIT_USAGE
    # The last line: a model loaded for the first time in this process may have drawn a loading bar first.
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("instructor-embed ingest: error: ") and message in last
    assert not db.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["ingest", "x.txt"],  # --collection is required
        ["search", "q", "--collection", "c", "-k", "three"],
        ["eval", "--data", "d", "--preset", "SciFact", "--no-instructions"],  # mutually exclusive
        ["eval", "--data", "d", "--via", "faiss"],
        ["no-such-command"],
    ],
)
def test_argparse_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_USAGE
    assert "usage: instructor-embed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "q", "--collection", "notes", "-k", "0"], "-k must be a positive integer, got 0"),
        (["eval", "--data", str(FIXTURES / "mini-beir"), "--limit-queries", "0"], "--limit-queries must be"),
        (["eval", "--data", str(FIXTURES / "mini-classification"), "--via", "chroma"], "via='raw'"),
    ],
)
def test_other_usage_errors(tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, *(["--db", str(tmp_path / "db")] if argv[0] == "search" else ["--model", str(TINY)])]) == 2
    assert message in capsys.readouterr().err


def test_a_model_that_cannot_be_loaded_exits_1(tmp_path: Path, doc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty-model").mkdir()
    argv = ingest(tmp_path / "db", doc)
    argv[argv.index(str(TINY))] = str(tmp_path / "empty-model")
    assert main(argv) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("instructor-embed ingest: failed: could not load the model") and "empty-model" in err
    assert "config.json" in err and "No other model was tried" in err


def test_a_model_path_that_does_not_exist_is_a_usage_error(
    tmp_path: Path, doc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ingest(tmp_path / "db", doc)
    argv[argv.index(str(TINY))] = str(tmp_path / "no-such-model")
    assert main(argv) == EXIT_USAGE
    assert "no-such-model': there is no such folder" in capsys.readouterr().err
    assert not (tmp_path / "db").exists()


def test_interrupt_exits_130(
    tmp_path: Path, doc: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "ingest", interrupted)
    assert main(ingest(tmp_path / "db", doc)) == EXIT_INTERRUPTED
    assert "interrupted" in capsys.readouterr().err


def test_search_of_a_collection_made_without_instructor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import chromadb

    chromadb.PersistentClient(path=str(tmp_path / "db")).create_collection("other", embedding_function=None)
    assert main(["search", "q", "--collection", "other", "--db", str(tmp_path / "db")]) == EXIT_USAGE
    assert "was not made with INSTRUCTOR embeddings" in capsys.readouterr().err


def test_success_exits_0_and_prints_a_summary(tmp_path: Path, doc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(ingest(tmp_path / "db", doc)) == EXIT_OK
    assert capsys.readouterr().out.startswith("files: 1  chunks: 1  added: 1  skipped: 0  removed: 0  bad inputs: 0")


def test_a_missing_reader_extra_is_one_line_exit_2_and_nothing_written(tmp_path: Path) -> None:
    """A PDF in the folder without the [pdf] extra (pypdf made unimportable in the real CLI process)."""
    import subprocess
    import sys

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Tides follow the moon.")
    (folder / "b.pdf").write_bytes(b"%PDF-1.4 not really")
    db = tmp_path / "db"
    code = (
        "import sys; sys.modules['pypdf'] = None\n"  # `import pypdf` now raises ImportError, as when absent
        "from instructor_integrations.cli import main\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    argv = ["ingest", str(folder), "--collection", "notes", "--db", str(db), "--model", str(TINY), "--device", "cpu"]
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "b.pdf" in lines[0] and 'pip install "instructor-integrations[pdf]"' in lines[0]
    assert not db.exists()


def test_a_misspelt_task_suggests_retrieval_and_names_whose_instructions(tmp_path: Path, minilm: str) -> None:
    import subprocess
    import sys

    doc = tmp_path / "a.txt"
    doc.write_text("Tides follow the moon.")
    argv = ["ingest", str(doc), "--collection", "notes", "--db", str(tmp_path / "db"), "--model", minilm,
            "--device", "cpu", "--task", "retreival"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "instructor_integrations.cli", *argv], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr
    assert "Close matches: retrieval, " in done.stderr
    assert f"the instructions of hkunlp/instructor-large, used for {minilm}" in done.stderr
    # A command line's way forward, not a Python one.
    assert "`instructor-embed tasks` lists them all" in done.stderr and "--document-instruction" in done.stderr
    assert "instructor_integrations.instructions" not in done.stderr


def test_a_wrong_collection_name_lists_the_existing_ones(tmp_path: Path) -> None:
    import subprocess
    import sys

    doc = tmp_path / "a.txt"
    doc.write_text("Tides follow the moon.")
    db = str(tmp_path / "db")
    model = ["--model", str(TINY), "--device", "cpu", "--no-progress"]
    assert main(["ingest", str(doc), "--collection", "notes", "--db", db, *model]) == 0
    done = subprocess.run(
        [sys.executable, "-m", "instructor_integrations.cli", "search", "tides", "--collection", "note", "--db", db],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert "collection 'note' cannot be opened" in done.stderr and "the collections there: notes" in done.stderr


def test_a_missing_extra_of_a_command_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """finetune --lora without peft (made unimportable in the real CLI process): the pip command, no traceback."""
    import subprocess
    import sys

    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"query": "what do tides follow?", "positive": "Tides follow the moon."}\n')
    code = "import sys; sys.modules['peft'] = None\nfrom instructor_integrations.cli import main\nsys.exit(main(sys.argv[1:]))"
    argv = ["finetune", "--model", str(TINY), "--data", str(rows), "--output", str(tmp_path / "out"), "--lora",
            "--device", "cpu", "--max-steps", "1", "--no-progress"]  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert 'pip install "instructor-integrations[lora]"' in done.stderr and "Traceback" not in done.stderr
