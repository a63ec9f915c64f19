"""The instructor-embed CLI, run in-process (main(argv)) against real Chroma and the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("chromadb")

from instructor_integrations.cli import EXIT_OK, EXIT_USAGE, main

from ..conftest import FIXTURES, TINY


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.md").write_text("# Tides\nTides are caused by the moon's gravity pulling on the oceans.\n")
    (folder / "sub" / "b.txt").write_text("Volcanoes erupt when magma rises. " * 40)
    (folder / "ignored.bin").write_bytes(b"\x00\x01")
    (folder / "rows.jsonl").write_text(
        json.dumps({"id": "r1", "title": "Bees", "text": "Bees dance to show where flowers are.", "lang": "en"}) + "\n"
    )
    return folder


def ingest_args(db: Path, *paths: str) -> list[str]:
    return [
        "ingest",
        *paths,
        "--collection",
        "notes",
        "--db",
        str(db),
        "--model",
        str(TINY),
        "--device",
        "cpu",
        "--chunk-tokens",
        "60",
        "--chunk-overlap-tokens",
        "10",
        "--no-progress",
    ]


def server_args(*paths: str) -> list[str]:
    """ingest_args for a Chroma server: --host instead of --db (both at once is a usage error)."""
    args = ingest_args(Path("unused"), *paths)
    at = args.index("--db")
    return [*args[:at], *args[at + 2 :], "--host", "127.0.0.1"]


def test_help_on_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("ingest", "search", "eval", "demo"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        assert "usage: instructor-embed " + command in capsys.readouterr().out


def test_ingest_is_idempotent_and_search_uses_saved_query_instruction(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db"
    code, out, _ = run(capsys, *ingest_args(db, str(corpus)), "--task", "SciFact")
    assert code == EXIT_OK
    assert "files: 3" in out and "skipped: 0" in out
    chunks = int(out.split("chunks: ")[1].split()[0])
    assert chunks >= 4  # b.txt is split into several chunks
    assert f"added: {chunks}" in out
    code, out, _ = run(capsys, *ingest_args(db, str(corpus)), "--task", "SciFact")
    assert code == EXIT_OK and "added: 0" in out and f"skipped: {chunks}" in out

    code, out, _ = run(
        capsys,
        *("search", "What causes the tides?", "--collection", "notes", "--db", str(db), "-k", "3", "--json"),
        *("--device", "cpu"),  # a CUDA host would otherwise embed the query in bfloat16 (dtype="auto")
    )
    assert code == EXIT_OK
    result = json.loads(out)
    assert len(result["hits"]) == 3
    assert all(-1.0 <= hit["score"] <= 1.0 for hit in result["hits"])
    # The score is computed with the preset's query instruction saved in the collection.
    from instructor_integrations import get_encoder
    from instructor_integrations.instructions import get_preset

    encoder = get_encoder(str(TINY), device="cpu")
    preset = get_preset("SciFact")
    top = result["hits"][0]
    q = encoder.encode(["What causes the tides?"], preset.query)[0]
    d = encoder.encode([top["text"]], preset.document)[0]
    assert abs(float(q @ d) - top["score"]) <= 1e-4  # the score is rounded to 4 places


def test_ingest_with_workers_stores_the_in_process_vectors(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import chromadb
    import numpy as np

    from instructor_integrations import get_encoder
    from instructor_integrations.instructions import get_preset

    db = tmp_path / "db"
    # --batch-size 1: every chunk is its own batch, so the call goes through the two worker processes.
    argv = [*ingest_args(db, str(corpus)), "--task", "SciFact", "--workers", "2", "--batch-size", "1"]
    code, out, _ = run(capsys, *argv)
    assert code == EXIT_OK and "added: " in out
    pooled = get_encoder(str(TINY), device="cpu", num_workers=2)
    assert pooled._pool is not None and pooled._pool.started
    got = chromadb.PersistentClient(path=str(db)).get_collection("notes").get(include=["documents", "embeddings"])
    assert len(got["ids"]) >= 4
    expected = get_encoder(str(TINY), device="cpu").encode(got["documents"], get_preset("SciFact").document)
    np.testing.assert_allclose(np.asarray(got["embeddings"]), expected, atol=1e-5)
    pooled.close()


def test_jsonl_ids_and_metadata(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import chromadb

    db = tmp_path / "db"
    assert run(capsys, *ingest_args(db, str(corpus / "rows.jsonl")))[0] == EXIT_OK
    collection = chromadb.PersistentClient(path=str(db)).get_collection("notes")
    got = collection.get(ids=["r1"], include=["documents", "metadatas"])
    assert got["documents"] == ["Bees Bees dance to show where flowers are."]
    assert got["metadatas"][0]["lang"] == "en"


def test_missing_file_is_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *ingest_args(tmp_path / "db", str(tmp_path / "nope.txt")))
    assert code == EXIT_USAGE and "nope.txt" in err and "does not exist" in err


def test_compile_with_ray_is_usage_error(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*server_args(str(corpus / "a.md")), "--ray", "--compile"]
    code, _, err = run(capsys, *argv)
    assert code == EXIT_USAGE and "--compile is not available with --ray" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "0"], "--workers must be a positive integer, got 0"),
        (["--ray", "--workers", "2"], "--workers is not available with --ray"),
    ],
)
def test_bad_workers_is_usage_error(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    argv = server_args(str(corpus / "a.md")) if "--ray" in extra else ingest_args(tmp_path / "db", str(corpus / "a.md"))
    code, _, err = run(capsys, *argv, *extra)
    assert code == EXIT_USAGE and message in err
    assert not (tmp_path / "db").exists()


def test_malformed_jsonl_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": broken}\n{"title": "no text"}\n')
    code, _, err = run(capsys, *ingest_args(tmp_path / "db", str(bad)))
    assert code == EXIT_USAGE and f"{bad}:2: malformed JSON" in err
    code, out, err = run(capsys, *ingest_args(tmp_path / "db", str(bad)), "--skip-bad")
    assert code == EXIT_OK
    assert "added: 1" in out and "bad inputs: 2" in out
    assert f"{bad}:3: missing a string 'text' field" in err


def test_undecodable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café crème".encode("latin-1"))
    code, _, err = run(capsys, *ingest_args(tmp_path / "db", str(latin)))
    assert code == EXIT_USAGE and "not UTF-8" in err and "latin1.txt" in err


def eval_argv(fixture: str, *extra: str) -> list[str]:
    return ["eval", "--data", str(FIXTURES / fixture), "--model", str(TINY), "--device", "cpu", *extra]


def test_eval_json_on_mini_beir(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *eval_argv("mini-beir", "--preset", "SciFact", "--json"))
    assert code == EXIT_OK
    result = json.loads(out)
    assert {"ndcg@10", "recall@100", "mrr@10"} <= set(result)
    assert result["instructions"]["query"].startswith("Represent a Scientific query")
    assert result["counts"] == {"queries": 4, "documents": 6}


def test_eval_classification_with_a_preset(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *eval_argv("mini-classification", "--preset", "banking77"))
    assert code == EXIT_OK
    assert out.startswith("mini-classification (classification) via raw: accuracy=")
    assert "labels=3" in out and "test=12" in out


def test_eval_classification_refuses_a_store_path(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *eval_argv("mini-classification", "--via", "chroma"))
    assert code == EXIT_USAGE and "via='raw'" in err


def test_eval_missing_qrels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d", "text": "t"}\n')
    code, _, err = run(capsys, "eval", "--data", str(tmp_path), "--model", str(TINY), "--device", "cpu")
    assert code == EXIT_USAGE and "qrels" in err


def test_search_missing_collection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "search", "q", "--collection", "absent", "--db", str(tmp_path / "db"))
    assert code == EXIT_USAGE and "'absent'" in err


def test_bad_collection_name(tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ingest_args(tmp_path / "db", str(corpus))
    args[args.index("notes")] = "a"
    code, _, err = run(capsys, *args)
    assert code == EXIT_USAGE and "collection name" in err


def test_demo_runs_offline(capsys: pytest.CaptureFixture[str], minilm: str) -> None:
    code, out, _ = run(capsys, "demo", "--model", minilm, "--device", "cpu", "-k", "1")
    assert code == EXIT_OK
    assert out.count("\nQ: ") == 3
    tides = out.split("Q: What makes the tides rise and fall?")[1]
    assert "chroma" in tides and "langchain" in tides and "llama-index" in tides
