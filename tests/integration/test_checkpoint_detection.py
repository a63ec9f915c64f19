"""What a checkpoint is, decided from the checkpoint: never from the folders it lies in.

Each case copies real checkpoint files (the packaged all-MiniLM-L6-v2, the tiny INSTRUCTOR layout) to
where a user's copy may lie and checks the decision, the rule named, and the vectors.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from instructor_integrations import InstructorEncoder, detect_checkpoint
from instructor_integrations._checkpoint import MARKER_FILE
from instructor_integrations.instructions import get_preset, preset_model_for

INSTRUCTION = "Represent the science sentence for retrieval: "
TEXTS = ["Aspirin inhibits platelet aggregation.", "The tides follow the moon.", "a"]


def _copy(source: str, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


@pytest.fixture(scope="module")
def minilm_reference(minilm: str) -> tuple[np.ndarray, int]:
    encoder = InstructorEncoder(minilm, device="cpu", precision="exact")
    assert encoder.settings.instructor_pooling is False
    return encoder.encode(TEXTS, INSTRUCTION), encoder.max_seq_length


@pytest.mark.parametrize(
    "parents", [("instructor-integrations",), ("instructor-models", "v1"), ("hkunlp-instructor-large",)]
)
def test_a_plain_model_under_instructor_named_folders_embeds_as_anywhere(
    tmp_path: Path, minilm: str, minilm_reference: tuple[np.ndarray, int], parents: tuple[str, ...]
) -> None:
    copy = _copy(minilm, tmp_path.joinpath(*parents, "minilm"))
    kind = detect_checkpoint(copy)
    assert kind.instructor is False, kind.rule
    encoder = InstructorEncoder(str(copy), device="cpu", precision="exact")
    assert encoder.settings.instructor_pooling is False
    expected, max_seq_length = minilm_reference
    assert encoder.max_seq_length == max_seq_length
    np.testing.assert_allclose(encoder.encode(TEXTS, INSTRUCTION), expected, atol=1e-6, rtol=0)
    assert preset_model_for(str(copy)) == "hkunlp/instructor-large"  # the default set, as for any plain model


def test_an_explicit_setting_always_wins(tmp_path: Path, minilm: str) -> None:
    copy = _copy(minilm, tmp_path / "instructor-copy")  # its own name says INSTRUCTOR
    assert detect_checkpoint(copy).instructor is True
    forced = InstructorEncoder(str(copy), device="cpu", instructor_pooling=False)
    assert forced.settings.instructor_pooling is False and forced.checkpoint.rule == "instructor_pooling=False"


def test_an_instructor_copy_saved_by_this_package_keeps_its_pooling_under_any_name(
    tmp_path: Path, tiny_encoder: InstructorEncoder, golden: dict
) -> None:
    folder = tiny_encoder.save(tmp_path / "neutral-name")
    marker = json.loads((folder / MARKER_FILE).read_text())
    assert marker["instructor_pooling"] is True and marker["base_model"] == tiny_encoder.model_name
    kind = detect_checkpoint(folder)
    assert kind.instructor is True and MARKER_FILE in kind.rule
    copy = InstructorEncoder(str(folder), device="cpu")
    pairs = golden["pairs"]
    np.testing.assert_allclose(copy.encode_pairs(pairs), np.asarray(golden["pair_embeddings"]), atol=1e-5, rtol=0)
    # The saved pooling config says so too: sentence-transformers wrote include_prompt false.
    (folder / MARKER_FILE).unlink()
    assert detect_checkpoint(folder).rule == "its pooling config (include_prompt false)"


def test_the_marker_also_records_a_plain_model(tmp_path: Path, minilm: str) -> None:
    folder = InstructorEncoder(minilm, device="cpu").save(tmp_path / "instructor-finetuned")
    kind = detect_checkpoint(folder)  # the marker decides before the folder's name
    assert kind.instructor is False and MARKER_FILE in kind.rule


def test_an_unreadable_marker_is_not_trusted(tmp_path: Path, tiny_path: str) -> None:
    copy = _copy(tiny_path, tmp_path / "model")
    (copy / MARKER_FILE).write_text("{not json")
    assert detect_checkpoint(copy).instructor is False


def test_a_hugging_face_cache_snapshot_is_named_by_its_repository(tmp_path: Path, tiny_path: str) -> None:
    snapshot = _copy(tiny_path, tmp_path / "hub" / "models--hkunlp--instructor-base" / "snapshots" / "0123abcd")
    kind = detect_checkpoint(snapshot)
    assert (kind.instructor, kind.preset_model) == (True, "hkunlp/instructor-base")
    assert InstructorEncoder(str(snapshot), device="cpu").settings.instructor_pooling is True
    other = _copy(tiny_path, tmp_path / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2" / "snapshots" / "ab")
    assert detect_checkpoint(other).instructor is False


@pytest.mark.parametrize(("mentioned", "preset"), [("hkunlp/instructor-xl", "hkunlp/instructor-xl"),
                                                   ("INSTRUCTOR-base", "hkunlp/instructor-base")])  # fmt: skip
def test_a_renamed_copy_with_its_readme_pools_and_takes_presets_as_its_original(
    tmp_path: Path, tiny_path: str, mentioned: str, preset: str
) -> None:
    copy = _copy(tiny_path, tmp_path / "prod-embedder")
    (copy / "README.md").write_text(f"---\nbase_model: {mentioned}\n---\nOur copy.\n")
    kind = detect_checkpoint(copy)
    assert (kind.instructor, kind.preset_model) == (True, preset)
    assert get_preset("SciFact", str(copy)) == get_preset("SciFact", preset)
    assert InstructorEncoder(str(copy), device="cpu").settings.instructor_pooling is True


def test_the_decision_and_its_rule_are_logged(tmp_path: Path, minilm: str, caplog: pytest.LogCaptureFixture) -> None:
    copy = _copy(minilm, tmp_path / "instructor-integrations" / "minilm")
    with caplog.at_level(logging.INFO, logger="instructor_integrations.encoder"):
        InstructorEncoder(str(copy), device="cpu")
    lines = [r.getMessage() for r in caplog.records if "decided by" in r.getMessage()]
    assert len(lines) == 1 and "instructor_pooling=False" in lines[0] and "no INSTRUCTOR marker" in lines[0]


def test_a_collection_reopened_from_another_path_pools_as_it_was_made(
    tmp_path: Path, minilm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    chromadb = pytest.importorskip("chromadb")
    from instructor_integrations.chroma import InstructorEmbeddingFunction

    made_in = tmp_path / "plain"
    _copy(minilm, made_in / "model")
    monkeypatch.chdir(made_in)
    db = tmp_path / "db"
    ef = InstructorEmbeddingFunction(
        "model", document_instruction=INSTRUCTION, query_instruction=INSTRUCTION, precision="exact", lazy=True
    )
    assert ef.get_config()["instructor_pooling"] is False  # saved as decided, never None
    collection = chromadb.PersistentClient(path=str(db)).create_collection(
        "docs", embedding_function=ef, configuration={"hnsw": {"space": "cosine"}}
    )
    collection.add(ids=[str(i) for i in range(len(TEXTS))], documents=TEXTS)  # same instruction as the queries
    # A new process (Chroma keeps one client per path in a process), the same relative model path, now resolved
    # under a folder whose name says "instructor".
    moved = tmp_path / "instructor-integrations"
    _copy(minilm, moved / "model")
    out = subprocess.run(
        [sys.executable, "-c", REOPEN, str(db), json.dumps(TEXTS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        cwd=moved,
    )
    reopened = json.loads(out.stdout.strip().splitlines()[-1])
    assert reopened["pooling"] is False and reopened["model"] == str(moved / "model")
    # Chroma's own query path embeds each text exactly as it was stored: its nearest record is itself, at distance 0.
    assert reopened["ids"] == [[str(i)] for i in range(len(TEXTS))]
    assert max(d for (d,) in reopened["distances"]) < 1e-6


REOPEN = """
import json, os, sys
import chromadb
import instructor_integrations.chroma
from instructor_integrations.chroma import InstructorEmbeddingFunction
collection = chromadb.PersistentClient(path=sys.argv[1]).get_collection("docs")  # no function passed
found = collection.query(query_texts=json.loads(sys.argv[2]), n_results=1)
saved = InstructorEmbeddingFunction.build_from_config(collection.configuration_json["embedding_function"]["config"])
encoder = saved.encoder
print(json.dumps({"pooling": encoder.settings.instructor_pooling, "model": os.path.abspath(encoder.model_name),
                  "ids": found["ids"], "distances": found["distances"]}))
"""
