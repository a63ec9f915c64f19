from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructor_integrations import instructions as ins

SHARED_JSON = Path(__file__).resolve().parents[3] / "shared" / "instructions" / "instructor_instructions.json"


def test_template_symmetric() -> None:
    assert (
        ins.build_instruction("sentence", objective="classification") == "Represent the sentence for classification: "
    )
    assert ins.build_instruction("  question ", domain="Wikipedia  ") == "Represent the Wikipedia question: "


def test_template_pair() -> None:
    pair = ins.build_pair(domain="Science", query_type="query", query_objective="retrieving a supporting passage")
    assert pair.query == "Represent the Science query for retrieving a supporting passage: "
    assert pair.document == "Represent the Science document for retrieval: "


@pytest.mark.parametrize("bad", ["", "   "])
def test_template_requires_text_type(bad: str) -> None:
    with pytest.raises(ValueError, match="text_type"):
        ins.build_instruction(bad)


def test_template_rejects_non_str_domain() -> None:
    with pytest.raises(TypeError, match="domain"):
        ins.build_instruction("sentence", domain=3)  # type: ignore[arg-type]


def test_packaged_presets_equal_authors_file() -> None:
    if not SHARED_JSON.exists():
        pytest.skip(f"{SHARED_JSON} not present")
    shipped = json.loads(SHARED_JSON.read_text("utf-8"))
    for model, entries in shipped["models"].items():
        assert len(entries) == 67
        for name, entry in entries.items():
            preset = ins.get_preset(name, model)
            assert preset.model == model and preset.name == name
            assert preset.query == entry.get("query", entry.get("instruction"))
            assert preset.document == entry.get("document", entry.get("instruction"))


def test_model_set_selection() -> None:
    assert ins.get_preset("SciFact", "hkunlp/instructor-large").query.endswith("supporting passage; ")
    assert ins.get_preset("STS12", "hkunlp/instructor-base").query == "Represent the statement, "
    # Unknown models take the large set, as the authors' harness does.
    assert ins.get_preset("STS12", "my/other-model").model == "hkunlp/instructor-large"
    # Local copies and mirrors of a checkpoint take its own set.
    assert ins.get_preset("STS12", "/models/instructor-base/").model == "hkunlp/instructor-base"


def test_lookup_is_forgiving_about_case_and_suffix() -> None:
    assert ins.get_preset("banking77").name == "Banking77Classification"
    assert ins.get_preset("scifact").name == "SciFact"
    assert ins.get_preset("cqadupstack-unix").name == "CQADupstackUnixRetrieval"


def test_unknown_dataset_lists_close_matches() -> None:
    with pytest.raises(ValueError, match="SciFact") as info:
        ins.get_preset("SciFakt")
    assert "no instruction preset for dataset 'SciFakt'" in str(info.value)
    # The parts, for a program (the CLI) that says it in its own words.
    from instructor_integrations.errors import UnknownPresetError

    assert isinstance(info.value, UnknownPresetError)
    assert (info.value.dataset, info.value.model) == ("SciFakt", "hkunlp/instructor-large")
    assert "SciFact" in info.value.close


def test_symmetric_flag_and_list() -> None:
    assert ins.get_preset("STSBenchmark").symmetric
    assert not ins.get_preset("NQ").symmetric
    assert len(ins.list_presets()) == 67
    assert set(ins.list_presets(category="sts")) >= {"STSBenchmark", "STS12"}


def test_resolve_task() -> None:
    assert ins.resolve_task(None) == ins.GENERIC_RETRIEVAL
    assert ins.resolve_task("retrieval") == ins.GENERIC_RETRIEVAL
    assert ins.resolve_task("NFCorpus").query.startswith("Represent the Medicine question")
