"""MTEB's own harness, offline, on the fixtures: its scores are the package's evaluation's; its instructions the presets."""

from __future__ import annotations

import logging

import pytest

from ..conftest import FIXTURES, TINY

pytestmark = pytest.mark.integration
mteb = pytest.importorskip("mteb")


def _model(**kwargs):
    from instructor_integrations.mteb import InstructorMTEBModel

    return InstructorMTEBModel(str(TINY), device="cpu", **kwargs)


def test_a_beir_folder_through_mtebs_harness_scores_what_the_packages_evaluation_scores() -> None:
    from instructor_integrations.evaluation import evaluate
    from instructor_integrations.instructions import get_preset
    from instructor_integrations.mteb import beir_task

    model = _model()
    result = mteb.evaluate(
        model, [beir_task(FIXTURES / "mini-beir", name="SciFact")], cache=None, show_progress_bar=False
    )
    (scores,) = result.task_results[0].scores["test"]
    ours = evaluate(FIXTURES / "mini-beir", model=str(TINY), task="SciFact", device="cpu").metrics
    assert scores["ndcg_at_10"] * 100 == pytest.approx(ours["ndcg@10"], abs=1e-3)  # MTEB keeps 5 decimals of 0-1
    assert scores["mrr_at_10"] * 100 == pytest.approx(ours["mrr@10"], abs=1e-3)
    assert scores["recall_at_100"] * 100 == pytest.approx(ours["recall@100"], abs=1e-3)
    preset = get_preset("SciFact", str(TINY))
    assert model.instructions_used == {("SciFact", "query"): preset.query, ("SciFact", "document"): preset.document}
    assert result.model_name == "local/tiny-instructor"


def test_an_sts_folder_through_mtebs_harness_scores_what_the_packages_evaluation_scores() -> None:
    from instructor_integrations.evaluation import evaluate
    from instructor_integrations.instructions import get_preset
    from instructor_integrations.mteb import sts_task

    model = _model()
    result = mteb.evaluate(model, [sts_task(FIXTURES / "mini-sts")], cache=None, show_progress_bar=False)
    (scores,) = result.task_results[0].scores["test"]
    ours = evaluate(FIXTURES / "mini-sts", model=str(TINY), task="STSBenchmark", device="cpu").metrics
    assert scores["cosine_spearman"] * 100 == pytest.approx(ours["cos_spearman"], abs=1e-3)
    assert model.instructions_used == {("STSBenchmark", "text"): get_preset("STSBenchmark", str(TINY)).document}


def test_overrides_win_and_a_task_without_a_preset_gets_the_fallback_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from instructor_integrations.instructions import GENERIC_RETRIEVAL, InstructionPair

    mine = InstructionPair(query="Represent the note question: ", document="Represent the note: ")
    model = _model(instructions={"NotesRetrieval": mine, "SciFact": "Represent the claim: "})
    assert (model.instruction_for("NotesRetrieval", "query"), model.instruction_for("NotesRetrieval", "document")) == (
        mine.query, mine.document,
    )  # fmt: skip
    assert (
        model.instruction_for("SciFact", "query")
        == model.instruction_for("SciFact", "document")
        == "Represent the claim: "
    )
    with caplog.at_level(logging.WARNING, logger="instructor_integrations.mteb"):
        assert model.instruction_for("MyOwnTask", "query") == GENERIC_RETRIEVAL.query
    assert "MTEB task MyOwnTask has no instruction preset" in caplog.text
    with pytest.raises(ValueError, match="side must be 'query', 'document' or 'text', got 'passage'"):
        model.instruction_for("SciFact", "passage")
    with pytest.raises(TypeError, match=r"instructions\['SciFact'\] must be an InstructionPair or a str"):
        _model(instructions={"SciFact": ("a", "b")})


@pytest.mark.parametrize("suite", ["MTEB(eng, v1)", "MTEB(eng, v2)"])
def test_every_task_of_the_english_benchmarks_has_the_authors_instructions(suite: str) -> None:
    from instructor_integrations.errors import UnknownPresetError
    from instructor_integrations.instructions import get_preset

    tasks = mteb.get_benchmark(suite).tasks
    names = [sub.metadata.name for task in tasks for sub in (getattr(task, "tasks", None) or [task])]  # aggregates
    assert len(names) >= 41
    missing = []
    for name in names:
        for model in ("hkunlp/instructor-base", "hkunlp/instructor-large", "hkunlp/instructor-xl"):
            try:
                get_preset(name, model)
            except UnknownPresetError:
                missing.append((name, model))
    assert not missing
