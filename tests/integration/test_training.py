"""Fine-tuning: every data format gives the same rows, the trainer pools as the encoder does, runs save,
reload and resume. The tiny INSTRUCTOR checkpoint and the packaged MiniLM, a few steps each."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("datasets", reason="the [train] extra (datasets, accelerate)")
pytest.importorskip("accelerate", reason="the [train] extra (datasets, accelerate)")

from instructor_integrations import InstructorEncoder
from instructor_integrations.sources import SourceError
from instructor_integrations.training import TrainingExample, finetune, load_examples, training_datasets

from ..conftest import TINY

pytestmark = pytest.mark.integration

QI = "Represent the science question for retrieving evidence: "
DI = "Represent the science abstract for retrieval: "
TOPICS = ["tides", "volcanoes", "glaciers", "comets", "enzymes", "neurons", "monsoons", "corals"]


def pairs() -> list[tuple[str, str]]:
    return [(f"what is known about {t}?", f"An abstract about {t}: {t} are studied in detail.") for t in TOPICS]


def write_beir(folder: Path) -> Path:
    """A BEIR folder: 8 documents and queries, 6 queries judged in train, 2 in test (one per query)."""
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as corpus, open(folder / "queries.jsonl", "w") as queries:
        for i, (query, document) in enumerate(pairs()):
            corpus.write(json.dumps({"_id": f"d{i}", "title": "", "text": document}) + "\n")
            queries.write(json.dumps({"_id": f"q{i}", "text": query}) + "\n")
    for split, members in (("train", range(6)), ("test", range(6, 8))):
        rows = "".join(f"q{i}\td{i}\t1\n" for i in members)
        unjudged = "q0\td1\t0\n" if split == "train" else ""  # a score of 0 gives no training row
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows + unjudged)
    return folder


def plain(rows: list[TrainingExample]) -> list[tuple]:
    return [(r.query, r.positive, r.negatives, r.query_instruction, r.document_instruction) for r in rows]


# ---------------------------------------------------------------------------------------------- formats
def test_every_format_gives_the_same_rows(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    expected = [TrainingExample(q, p, (), QI, DI) for q, p in pairs()[:6]]
    ours = [{"query": q, "positive": p} for q, p in pairs()[:6]]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in ours))
    medi = [{"query": [QI, q], "pos": [DI, p], "neg": None, "task_id": 0} for q, p in pairs()[:6]]
    medi_file = tmp_path / "medi.json"
    medi_file.write_text(json.dumps(medi))
    llama = {
        "queries": {f"q{i}": q for i, (q, _) in enumerate(pairs()[:6])},
        "corpus": {f"d{i}": p for i, (_, p) in enumerate(pairs())},
        "relevant_docs": {f"q{i}": [f"d{i}"] for i in range(6)},
    }
    llama_file = tmp_path / "qa.json"
    llama_file.write_text(json.dumps(llama))
    given = {"query_instruction": QI, "document_instruction": DI}
    sources = {
        "beir": load_examples(write_beir(tmp_path / "beir"), **given),
        "jsonl": load_examples(jsonl, **given),
        "medi": load_examples(medi_file),  # instructions from the rows themselves
        "llama-index": load_examples(llama_file, **given),
        "datasets": load_examples(datasets.Dataset.from_list(ours), **given),
        "rows": load_examples(ours, **given),
    }
    for name, rows in sources.items():
        assert plain(rows) == plain(expected), name
    # Per-row instructions win over the given ones; a preset fills what is missing.
    own = load_examples([{"query": "q", "positive": "p", "query_instruction": "Ask: "}], task="SciFact")
    from instructor_integrations.instructions import get_preset

    assert (own[0].query_instruction, own[0].document_instruction) == ("Ask: ", get_preset("SciFact").document)


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ('{"query": "q", "positive": "p"}\n{"query": "q2"}\n', ".jsonl", r"rows\.jsonl:2: 'positive' must be a non-empty"),
        ('{"query": "q", "positive": "p"}\n{"query": \n', ".jsonl", r"rows\.jsonl:2: malformed JSON"),
        ('{"query": "q", "positive": "p", "label": 1}\n', ".jsonl", r"rows\.jsonl:1: unknown field\(s\) 'label'"),
        ('[{"query": ["i", "q"], "pos": "p", "task_id": 1}]', ".json", r"rows\.json\[0\]: MEDI's 'pos' must be \[instruction, text\]"),
        ('{"queries": {"q": "a"}, "corpus": {}, "relevant_docs": {"q": ["d9"]}}', ".json", r"document 'd9' is not in 'corpus'"),
    ],
)  # fmt: skip
def test_a_malformed_row_is_named_by_file_and_line(tmp_path: Path, content: str, suffix: str, message: str) -> None:
    path = tmp_path / f"rows{suffix}"
    path.write_text(content)
    with pytest.raises(SourceError, match=message):
        load_examples(path)


def test_a_bad_row_fails_before_any_model_is_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import instructor_integrations.training.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "InstructorEncoder", None)  # any use would fail differently
    with pytest.raises(SourceError, match=r"row 1: 'query' must be a non-empty string"):
        finetune(str(TINY), [{"query": "q", "positive": "p"}, {"query": " ", "positive": "p"}], output=tmp_path)
    beir = write_beir(tmp_path / "beir")
    with pytest.raises(ValueError, match="the test split 'train' shares 6 queries with the training rows"):
        finetune(str(TINY), beir, output=tmp_path / "o", test_split="train")
    with pytest.raises(ValueError, match="learning_rate must be a number > 0, got -1"):
        finetune(str(TINY), [{"query": "q", "positive": "p"}], output=tmp_path, learning_rate=-1)


# ---------------------------------------------------------------------------------------------- parity
def test_the_trainers_forward_equals_the_encoder(tiny_encoder: InstructorEncoder) -> None:
    """The rows through sentence-transformers' own training collator and the model's forward: the encoder's
    vectors (1e-6), for a long instruction, a one-token one (not left out, the reference's rule) and none."""
    import torch
    from sentence_transformers.base.data_collator import BaseDataCollator

    cases = [(QI, DI), ("Q: ", None), (None, DI)]
    for query_instruction, document_instruction in cases:
        rows = [TrainingExample(q, p, (f"not {p}",), query_instruction, document_instruction) for q, p in pairs()]
        data, prompts = training_datasets(tiny_encoder, rows)
        collator = BaseDataCollator(preprocess_fn=tiny_encoder.model.preprocess, prompts=prompts)
        features = [dict(row, dataset_name="default") for row in data["default"]]
        batch = collator(features)
        model = tiny_encoder.model.eval()
        for column, texts, instruction in (
            ("query", [q for q, _ in pairs()], query_instruction),
            ("positive", [p for _, p in pairs()], document_instruction),
            ("negative_1", [f"not {p}" for _, p in pairs()], document_instruction),
        ):
            inputs = {k[len(column) + 1 :]: v for k, v in batch.items() if k.startswith(column + "_")}
            with torch.no_grad():
                trained = model(inputs)["sentence_embedding"].numpy()
            np.testing.assert_allclose(trained, tiny_encoder.encode(texts, instruction), atol=1e-6)


# ---------------------------------------------------------------------------------------------- runs
def test_a_run_saves_a_checkpoint_that_reloads_under_any_name(tmp_path: Path, minilm: str) -> None:
    """MiniLM (no INSTRUCTOR) trained with instructions: the copy pools like INSTRUCTOR under a neutral folder
    name, equals the in-memory model, loads in plain sentence-transformers with the instructions as prompts."""
    from sentence_transformers import SentenceTransformer

    data = write_beir(tmp_path / "beir")
    result = finetune(
        minilm, data, output=tmp_path / "out", query_instruction=QI, document_instruction=DI,
        dev_fraction=0.34, test_split="test", max_steps=3, batch_size=4, learning_rate=1e-4,
        device="cpu", progress=False, eval_steps=3,
    )  # fmt: skip
    assert result.steps == 3 and set(result.dev) == {"before", "after"} and set(result.test) == {"before", "after"}
    assert result.train_rows == {"beir": 4}  # 6 judged train queries, 2 held out for dev
    record = json.loads((tmp_path / "out" / "finetune_results.json").read_text())
    assert record["test"] == result.test and record["settings"]["query_instruction"] == QI
    assert "Fine-tuned with instructor-integrations" in (tmp_path / "out" / "README.md").read_text()
    copy = tmp_path / "plain-name"
    shutil.copytree(tmp_path / "out", copy, ignore=shutil.ignore_patterns("checkpoints"))
    reopened = InstructorEncoder(str(copy), device="cpu")
    assert reopened.checkpoint.instructor and "marker" in reopened.checkpoint.rule
    texts = [q for q, _ in pairs()]
    trained = InstructorEncoder(str(tmp_path / "out"), device="cpu").encode(texts, QI)
    np.testing.assert_allclose(reopened.encode(texts, QI), trained, atol=1e-6)
    base = InstructorEncoder(minilm, device="cpu", instructor_pooling=True).encode(texts, QI)
    assert np.abs(trained - base).max() > 1e-4  # the weights did change
    st = SentenceTransformer(str(copy), device="cpu")
    assert st.prompts["query"] == QI and st.prompts["document"] == DI
    # The copy scores exactly what the in-memory model scored at the end of the run.
    from instructor_integrations.evaluation import evaluate

    again = evaluate(data, model=str(copy), device="cpu", query_instruction=QI, document_instruction=DI)
    assert again.metrics == result.test["after"]


KILLED_RUN = """
import os, signal, sys
from transformers import TrainerCallback
from instructor_integrations.training import finetune

class Die(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 4 and "--resume" not in sys.argv:
            os.kill(os.getpid(), signal.SIGKILL)  # right after checkpoint-4 is written

rows = [{"query": f"question {i}", "positive": f"answer {i}"} for i in range(16)]
result = finetune(sys.argv[1], rows, output=sys.argv[2], max_steps=6, batch_size=4, eval_steps=2,
                  device="cpu", progress=False, resume="--resume" in sys.argv, callbacks=[Die()])
print("STEPS", result.steps)
"""


def test_a_killed_run_resumes_and_ends_with_the_same_steps(tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", KILLED_RUN, str(TINY), str(tmp_path / "out")]
    killed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out" / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "STEPS 6" in resumed.stdout
    state = json.loads((tmp_path / "out" / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6 and state["log_history"][0]["step"] <= 2  # the history of the first run kept


def test_mined_negatives_exclude_every_positive_of_the_query(tiny_encoder: InstructorEncoder) -> None:
    from instructor_integrations.training import mine_hard_negatives

    rows = [TrainingExample("q", "p1", (), QI, DI), TrainingExample("q", "p2", (), QI, DI)]
    corpus = ["p1", "p2", *(f"other {i}" for i in range(6))]
    mined = mine_hard_negatives(tiny_encoder, rows, corpus=corpus, num_negatives=3)
    for row in mined:
        assert len(row.negatives) == 3 and not {"p1", "p2"} & set(row.negatives)
    # The negatives are the best-ranked others, in order (the encoder's own cosine ranking).
    vectors = tiny_encoder.encode(corpus[2:], DI)
    query = tiny_encoder.encode(["q"], QI)[0]
    order = np.argsort(-(vectors @ query / np.linalg.norm(vectors, axis=1)), kind="stable")
    assert list(mined[0].negatives) == [corpus[2 + i] for i in order[:3]]
    skipped = mine_hard_negatives(tiny_encoder, rows, corpus=corpus, num_negatives=2, skip_top=1)
    assert list(skipped[0].negatives) == [corpus[2 + i] for i in order[1:3]]


def test_the_cli_trains_scores_and_names_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from instructor_integrations.cli import main

    data = write_beir(tmp_path / "beir")
    argv = ["finetune", "--model", str(TINY), "--data", str(data), "--output", str(tmp_path / "out"),
            "--dev-fraction", "0.34", "--test-split", "test", "--max-steps", "2", "--batch-size", "4",
            "--device", "cpu", "--no-progress", "--query-instruction", QI, "--document-instruction", DI]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    record = json.loads((tmp_path / "out" / "finetune_results.json").read_text())
    before, after = record["test"]["before"]["ndcg@10"], record["test"]["after"]["ndcg@10"]
    assert f"test  ndcg@10     before {before:6.2f}  after {after:6.2f}" in out and "2 steps" in out
    assert InstructorEncoder(str(tmp_path / "out"), device="cpu").checkpoint.instructor
    bad = tmp_path / "rows.jsonl"
    bad.write_text('{"query": "q", "positive": "p"}\n{"query": "q", "positive": ""}\n')
    assert main(["finetune", "--model", str(TINY), "--data", str(bad), "--output", str(tmp_path / "o2")]) == 2
    assert "rows.jsonl:2: 'positive' must be a non-empty string" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()  # nothing written for a bad row
    assert main(["finetune", "--data", str(bad), "--output", str(tmp_path / "o3")]) == 2
    assert "give --model" in capsys.readouterr().err


def test_early_stopping_ends_the_run_when_the_dev_score_stops_rising(tmp_path: Path) -> None:
    rows = [{"query": q, "positive": p} for q, p in pairs()]
    result = finetune(
        str(TINY), rows, output=tmp_path / "out", dev_fraction=0.25, max_steps=20, batch_size=2, eval_steps=1,
        early_stopping_patience=1, learning_rate=1e-12, device="cpu", progress=False,
    )  # fmt: skip
    # A learning rate of 1e-12 leaves the dev score where it was: the first score is the best, the second
    # is no better, and the run stops there instead of at step 20.
    assert result.steps == 2
    assert result.dev["after"] == result.dev["before"]


def test_a_lora_run_saves_an_adapter_that_loads(tmp_path: Path) -> None:
    peft = pytest.importorskip("peft", reason="LoRA needs peft 0.22+ (the [lora] extra), not installed")
    from packaging.version import Version

    if Version(peft.__version__) < Version("0.22"):
        pytest.skip(f"LoRA needs peft 0.22+ (transformers 5's minimum); peft {peft.__version__} is installed")
    rows = [{"query": q, "positive": p} for q, p in pairs()]
    result = finetune(
        str(TINY), rows, output=tmp_path / "out", max_steps=3, batch_size=4, learning_rate=1e-2, lora=True,
        query_instruction=QI, document_instruction=DI, device="cpu", progress=False,
    )  # fmt: skip
    assert result.settings["lora"] is True and result.steps == 3
    saved = tmp_path / "out"
    assert (saved / "adapter_config.json").exists() and not (saved / "model.safetensors").exists()
    texts = [q for q, _ in pairs()]
    reloaded = InstructorEncoder(str(saved), device="cpu")
    assert reloaded.checkpoint.instructor
    base = InstructorEncoder(str(TINY), device="cpu").encode(texts, QI)
    tuned = reloaded.encode(texts, QI)
    assert np.abs(tuned - base).max() > 1e-4  # the adapter is applied


@pytest.mark.slow
def test_a_two_worker_ray_train_run_saves_a_checkpoint_that_loads_and_scores(tmp_path: Path) -> None:
    """Ray Train, 2 CPU workers on a local Ray: one data-parallel run; the first worker's checkpoint loads with
    INSTRUCTOR pooling and scores what the run reported."""
    pytest.importorskip("ray.train", reason="the [ray] extra")
    import ray

    from instructor_integrations.evaluation import evaluate
    from instructor_integrations.training.distributed import finetune_with_ray

    data = write_beir(tmp_path / "beir")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        result = finetune_with_ray(
            str(TINY), data, output=tmp_path / "out", num_workers=2, query_instruction=QI, document_instruction=DI,
            test_split="test", max_steps=4, batch_size=2, learning_rate=1e-3, device="cpu",
        )  # fmt: skip
    finally:
        ray.shutdown()
    assert result.settings["processes"] == 2 and result.steps == 4
    assert set(result.test) == {"before", "after"}
    loaded = InstructorEncoder(str(tmp_path / "out"), device="cpu")
    assert loaded.checkpoint.instructor and "marker" in loaded.checkpoint.rule
    again = evaluate(data, model=str(tmp_path / "out"), device="cpu", query_instruction=QI, document_instruction=DI)
    assert again.metrics == result.test["after"]
    base = InstructorEncoder(str(TINY), device="cpu").encode([q for q, _ in pairs()], QI)
    assert np.abs(loaded.encode([q for q, _ in pairs()], QI) - base).max() > 1e-5  # it did train


def test_gradient_checkpointing_trains_the_same_weights(tmp_path: Path) -> None:
    """Recomputing activations in the backward pass changes memory, not the result: the same seed, the same
    weights after three steps (1e-5)."""
    rows = [{"query": q, "positive": p} for q, p in pairs()]
    vectors = []
    for checkpointing in (False, True):
        finetune(
            str(TINY), rows, output=tmp_path / str(checkpointing), max_steps=3, batch_size=4, learning_rate=1e-3,
            query_instruction=QI, document_instruction=DI, device="cpu", progress=False,
            gradient_checkpointing=checkpointing,
        )  # fmt: skip
        vectors.append(InstructorEncoder(str(tmp_path / str(checkpointing)), device="cpu").encode(["tides?"], QI))
    base = InstructorEncoder(str(TINY), device="cpu").encode(["tides?"], QI)
    assert np.abs(vectors[0] - base).max() > 1e-4  # it trained
    np.testing.assert_allclose(vectors[1], vectors[0], atol=1e-5)


def test_the_cached_loss_gives_the_gradients_of_the_whole_batch(tiny_encoder: InstructorEncoder) -> None:
    """GradCache (mini-batches of 2) against the plain loss on the same batch of 8: the same loss and the same
    gradient on every weight (dropout off: the two losses embed in different chunks, so they would draw
    different masks)."""
    import copy

    import torch
    from sentence_transformers.base.data_collator import BaseDataCollator

    from instructor_integrations.training import CachedInstructorLoss, InstructorLoss

    rows = [TrainingExample(q, p, (f"not {p}",), QI, DI) for q, p in pairs()]
    data, prompts = training_datasets(tiny_encoder, rows)
    collator = BaseDataCollator(preprocess_fn=tiny_encoder.model.preprocess, prompts=prompts)
    batch = collator([dict(row, dataset_name="default") for row in data["default"]])
    columns = ["query", "positive", "negative_1"]
    features = [{k[len(c) + 1 :]: v for k, v in batch.items() if k.startswith(c + "_")} for c in columns]
    results = []
    for make in (lambda m: InstructorLoss(m), lambda m: CachedInstructorLoss(m, mini_batch_size=2)):
        model = copy.deepcopy(tiny_encoder.model).eval()
        value = make(model)(features)
        value.backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        results.append((float(value.detach()), grads))
    (plain, plain_grads), (cached, cached_grads) = results
    assert cached == pytest.approx(plain, abs=1e-6)
    assert plain_grads.keys() == cached_grads.keys() and len(plain_grads) > 5
    for name, grad in plain_grads.items():
        torch.testing.assert_close(cached_grads[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_the_mining_margin_keeps_negatives_below_the_positive(tiny_encoder: InstructorEncoder) -> None:
    from instructor_integrations.training import mine_hard_negatives

    rows = [TrainingExample("q", "p1", (), QI, DI), TrainingExample("q2", "not in the corpus", (), QI, DI)]
    corpus = ["p1", *(f"other {i}" for i in range(6))]
    mined = mine_hard_negatives(tiny_encoder, rows, corpus=corpus, num_negatives=6, margin=0.0)
    for row in mined:
        query = tiny_encoder.encode([row.query], QI)[0]
        positive = tiny_encoder.encode([row.positive], DI)[0]
        negatives = tiny_encoder.encode(list(row.negatives), DI) if row.negatives else np.zeros((0, query.shape[0]))
        assert np.all(negatives @ query <= positive @ query + 1e-6)  # unit vectors: dot products are cosines
    assert sum(len(row.negatives) for row in mined) < 12  # the margin did leave some out
    none = mine_hard_negatives(tiny_encoder, rows, corpus=corpus, num_negatives=3, margin=2.0)
    assert all(row.negatives == () for row in none)  # no cosine lies 2 below another


def test_dev_and_test_sets_of_one_corpus_embed_it_once(tiny_encoder: InstructorEncoder) -> None:
    """Before and after training, the dev and test splits of one BEIR folder share its corpus: it is embedded
    once for both, and each set scores what scoring it alone gives."""
    from instructor_integrations.evaluation import retrieval_metrics
    from instructor_integrations.evaluation.datasets import load_retrieval
    from instructor_integrations.training.trainer import _score

    from ..conftest import FIXTURES

    folder = FIXTURES / "mini-beir"
    held = {"dev": load_retrieval(folder, split="train"), "test": load_retrieval(folder, split="test")}
    corpus = set(held["dev"].corpus.values())
    assert corpus == set(held["test"].corpus.values()) and len(corpus) > 1
    alone = {name: retrieval_metrics(tiny_encoder, data, QI, DI) for name, data in held.items()}
    embedded: list[str] = []
    real = tiny_encoder.encode

    def counting(texts, instruction=None, **kwargs):
        if instruction == DI:
            embedded.extend(texts)
        return real(texts, instruction, **kwargs)

    scores: dict = {"dev": {}, "test": {}}
    tiny_encoder.encode = counting  # type: ignore[method-assign]
    try:
        _score(scores, "before", tiny_encoder, held, (QI, DI), 32)
    finally:
        del tiny_encoder.encode
    assert sorted(embedded) == sorted(corpus)  # each document text once, for both sets
    for name in held:
        assert scores[name]["before"] == pytest.approx(alone[name], abs=1e-3)
