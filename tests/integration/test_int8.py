"""``precision="int8"``: the transformer as an int8 ONNX Runtime graph, built once, cached, never trusted blindly.

Held to the float32 reference by cosine (int8 moves the vectors; the scores it costs are measured by
benchmarks/int8.py), with INSTRUCTOR's pooling rule intact; the cache is rebuilt for other weights, a
changed file, a foreign manifest; the scheduler, worker processes, the CLI and the server run on top
of it unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from instructor_integrations import InstructorEncoder

from ..conftest import FIXTURES, TINY

ROOT = FIXTURES.parents[1]

pytestmark = pytest.mark.integration
ort = pytest.importorskip("onnxruntime", reason='precision="int8" needs the [int8] extra (onnxruntime)')
pytest.importorskip("onnx", reason='precision="int8" needs the [int8] extra (onnx)')

DOC_INSTRUCTION = "Represent the Science document for retrieval: "


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An int8 cache of this test's own."""
    folder = tmp_path / "int8-cache"
    monkeypatch.setenv("INSTRUCTOR_INTEGRATIONS_CACHE", str(folder))
    return folder


def corpus_texts() -> list[str]:
    rows = [json.loads(line) for line in (FIXTURES / "mini-beir" / "corpus.jsonl").read_text("utf-8").splitlines()]
    return [(row.get("title", "") + " " + row["text"]).strip() for row in rows]


def test_golden_vectors_within_cosine_099_with_the_instruction_left_out_of_the_pooling(
    cache: Path, golden: dict, tiny_path: str
) -> None:
    encoder = InstructorEncoder(tiny_path, precision="int8")
    assert (encoder.precision, encoder.device.type, encoder.instructor_pooling) == ("int8", "cpu", True)
    got = encoder.encode_pairs(golden["pairs"])
    gold = np.asarray(golden["pair_embeddings"], dtype=np.float32)
    # The line, on every kernel family: AVX2 without VNNI gets 7-bit weights, where 8-bit ones
    # saturate its kernels (the tiny checkpoint's worst pair was 0.966 there).
    assert cosines(got, gold).min() >= 0.99
    # The rule held, not just a close vector: where pooling the instruction in moves a vector away from the
    # reference, the int8 vector stays nearer the reference than to that.
    pooled_in = InstructorEncoder(tiny_path, device="cpu", instructor_pooling=False).encode_pairs(golden["pairs"])
    far = cosines(pooled_in, gold) < 0.99
    assert far.sum() >= 10
    assert (cosines(got, gold)[far] > cosines(got, pooled_in)[far]).all()


def test_bert_models_with_token_types_stay_close_to_exact(cache: Path, minilm: str) -> None:
    texts = corpus_texts()
    exact = InstructorEncoder(minilm, device="cpu", precision="exact").encode(texts)
    got = InstructorEncoder(minilm, precision="int8").encode(texts)
    assert got.shape == exact.shape
    assert cosines(got, exact).min() >= 0.98
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # MiniLM's Normalize module ran


def test_the_vectors_hold_on_avx2_kernels(cache: Path) -> None:
    """The two cosine tests above again, in a process whose libraries see an AVX2-only CPU.

    ONNX Runtime has other int8 kernels there (no VNNI: 16-bit intermediate sums). ``scripts/avx2only``
    hides AVX-512, VNNI and AMX from CPUID, so this runs on any CPU with CPUID faulting, not only on
    the AVX2 machines it stands for.
    """
    spec = importlib.util.spec_from_file_location("avx2only", ROOT / "scripts" / "avx2only" / "run.py")
    assert spec is not None and spec.loader is not None
    avx2only = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(avx2only)
    reason = avx2only.unavailable()
    if reason:
        pytest.skip(f"no AVX2-only view of this CPU: {reason}")
    env = {**avx2only.environment(), "INSTRUCTOR_INTEGRATIONS_CACHE": str(cache)}
    probe = (
        "import onnxruntime, torch; from instructor_integrations._engine.int8 import saturating_kernels;"
        "print(torch.backends.cpu.get_cpu_capability(), saturating_kernels())"
    )
    seen = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    # The mask holds in a process that loads the runtime, and the package takes it for an AVX2 machine.
    assert seen.stdout.split() == [avx2only.TORCH_CAPABILITY, "True"]
    selected = "test_golden_vectors_within_cosine_099 or test_bert_models_with_token_types_stay_close_to_exact"
    command = [sys.executable, "-m", "pytest", "-p", "no:faulthandler", "-p", "no:cacheprovider", "-q"]
    run = subprocess.run(
        [*command, str(Path(__file__).resolve()), "-k", selected],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "2 passed" in run.stdout, run.stdout[-3000:]


def test_a_graph_for_vnni_kernels_is_not_reused_where_kernels_saturate(
    cache: Path, tiny_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8-bit weights saturate AVX2's kernels: a cache shared with (or a disk image built on) a VNNI machine
    gets a second graph, with 7-bit weights, on an AVX2 one."""
    import instructor_integrations._engine.int8 as int8_module

    folders, built = [], []
    for saturating in (False, True, False):
        monkeypatch.setattr(int8_module, "saturating_kernels", lambda saturating=saturating: saturating)
        backbone = InstructorEncoder(tiny_path, precision="int8")._runner.int8
        assert backbone.reduce_range is saturating
        assert backbone.key["quantization"]["weights"] == ("int7" if saturating else "int8")
        folders.append(backbone.folder)
        built.append(backbone.built)
    assert folders[0] != folders[1]
    assert folders[2] == folders[0]
    assert built == [True, True, False]  # each graph built once; the third encoder reused the first
    assert len([path for path in cache.iterdir() if path.is_dir()]) == 2


def test_the_float32_transformer_is_released_and_save_writes_the_checkpoint(
    cache: Path, tiny_path: str, tmp_path: Path
) -> None:
    """The graph holds the weights, so the float32 transformer's go (instructor-xl's are several GB); saving
    an int8 encoder still writes the full checkpoint, which reopens with the original's vectors."""
    encoder = InstructorEncoder(tiny_path, precision="int8")
    assert encoder._runner.int8 is not None
    parameters = list(encoder._runner.int8.backbone.parameters())
    assert parameters and all(p.is_meta for p in parameters)
    texts = ["A cat sat on the mat.", "Tides follow the moon."]
    assert encoder.encode(texts, DOC_INSTRUCTION).shape == (2, 24)
    folder = encoder.save(tmp_path / "copy")
    exact = InstructorEncoder(tiny_path, device="cpu", precision="exact")
    copy = InstructorEncoder(str(folder), device="cpu", precision="exact")
    assert copy.instructor_pooling is True and copy.max_seq_length == exact.max_seq_length
    np.testing.assert_array_equal(copy.encode(texts, DOC_INSTRUCTION), exact.encode(texts, DOC_INSTRUCTION))


def test_the_graph_is_built_once_then_reused_with_identical_vectors(cache: Path, tiny_path: str) -> None:
    first = InstructorEncoder(tiny_path, precision="int8")
    assert first._runner.int8 is not None and first._runner.int8.built
    folder = first._runner.int8.folder
    assert folder.parent == cache and (folder / "model.onnx").is_file() and (folder / "manifest.json").is_file()
    texts = ["A cat sat on the mat.", "Tides follow the moon.", "x"]
    expected = first.encode(texts, DOC_INSTRUCTION)
    again = InstructorEncoder(tiny_path, precision="int8")
    assert again._runner.int8 is not None and not again._runner.int8.built
    np.testing.assert_array_equal(again.encode(texts, DOC_INSTRUCTION), expected)


@pytest.mark.parametrize("damage", ["truncated graph", "foreign manifest", "no manifest", "garbage manifest"])
def test_a_damaged_or_foreign_cache_is_rebuilt(cache: Path, tiny_path: str, damage: str) -> None:
    first = InstructorEncoder(tiny_path, precision="int8")
    assert first._runner.int8 is not None
    folder = first._runner.int8.folder
    texts = ["A cat sat on the mat.", "Tides follow the moon."]
    expected = first.encode(texts, DOC_INSTRUCTION)
    manifest = folder / "manifest.json"
    if damage == "truncated graph":
        graph = folder / "model.onnx"
        graph.write_bytes(graph.read_bytes()[:1000])
    elif damage == "foreign manifest":  # a graph made by another runtime, same file name
        data = json.loads(manifest.read_text())
        data["key"]["onnxruntime"] = "0.0.1"
        manifest.write_text(json.dumps(data))
    elif damage == "no manifest":
        manifest.unlink()
    else:
        manifest.write_text("{not json")
    again = InstructorEncoder(tiny_path, precision="int8")
    assert again._runner.int8 is not None and again._runner.int8.built
    np.testing.assert_array_equal(again.encode(texts, DOC_INSTRUCTION), expected)
    assert json.loads(manifest.read_text())["key"] == again._runner.int8.key


def test_weights_kept_beside_the_graph_as_for_a_model_past_2_gib(
    cache: Path, tiny_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """instructor-xl's float32 weights pass protobuf's 2 GiB cap, so its graph keeps them in a side file.

    The tiny checkpoint takes that path here (the size threshold set to zero): the same vectors as the
    one-file graph, the side file covered by the manifest's digest (damaged, the graph is rebuilt).
    """
    import instructor_integrations._engine.int8 as int8_module

    texts = ["A cat sat on the mat.", "Tides follow the moon."]
    expected = InstructorEncoder(tiny_path, precision="int8").encode(texts, DOC_INSTRUCTION)
    monkeypatch.setenv("INSTRUCTOR_INTEGRATIONS_CACHE", str(cache / "side-file"))
    monkeypatch.setattr(int8_module, "_EXTERNAL_DATA_BYTES", 0)
    split = InstructorEncoder(tiny_path, precision="int8")
    assert split._runner.int8 is not None and split._runner.int8.built
    folder = split._runner.int8.folder
    files = {path.name for path in int8_module._graph_files(folder)}
    assert "model.onnx" in files and len(files) >= 2, files
    np.testing.assert_array_equal(split.encode(texts, DOC_INSTRUCTION), expected)
    side = folder / sorted(files - {"model.onnx"})[0]
    side.write_bytes(side.read_bytes()[:-16] + bytes(16))  # same size, last weights zeroed
    again = InstructorEncoder(tiny_path, precision="int8")
    assert again._runner.int8 is not None and again._runner.int8.built
    np.testing.assert_array_equal(again.encode(texts, DOC_INSTRUCTION), expected)


def test_new_weights_in_the_same_folder_get_a_new_graph(cache: Path, tmp_path: Path) -> None:
    """A model fine-tuned and saved over its old folder: the cached graph of the old weights is not used."""
    import torch
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "tiny-instructor"
    shutil.copytree(TINY, folder)
    texts = ["A cat sat on the mat.", "Tides follow the moon."]
    old = InstructorEncoder(str(folder), precision="int8")
    old_vectors = old.encode(texts, DOC_INSTRUCTION)
    model = SentenceTransformer(str(folder), device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model[0].auto_model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05 * parameter.std())
    model.save(str(folder))
    new = InstructorEncoder(str(folder), precision="int8")
    assert new._runner.int8 is not None and old._runner.int8 is not None
    assert new._runner.int8.built and new._runner.int8.folder != old._runner.int8.folder
    new_vectors = new.encode(texts, DOC_INSTRUCTION)
    exact = InstructorEncoder(str(folder), device="cpu", precision="exact").encode(texts, DOC_INSTRUCTION)
    assert cosines(new_vectors, exact).min() >= 0.99
    # The old graph's vectors are further from the new weights' than the new graph's are.
    assert (cosines(old_vectors, exact) < cosines(new_vectors, exact)).all()


def test_processes_that_start_together_build_the_graph_once(cache: Path, tiny_path: str, tmp_path: Path) -> None:
    script = tmp_path / "load.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from instructor_integrations import InstructorEncoder
            encoder = InstructorEncoder({tiny_path!r}, precision="int8")
            print("built" if encoder._runner.int8.built else "reused", encoder.encode(["a b c"]).shape)
            """
        )
    )
    env = {**os.environ, "INSTRUCTOR_INTEGRATIONS_CACHE": str(cache)}
    processes = [
        subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], [err.decode()[-2000:] for _, err in outputs]
    words = sorted(out.decode().split()[0] for out, _ in outputs)
    assert words == ["built", "reused", "reused"]
    assert len([path for path in cache.iterdir() if path.is_dir()]) == 1


def test_worker_processes_run_the_same_graph(cache: Path, tiny_path: str) -> None:
    texts = [f"document number {i} " + "word " * (i % 7) for i in range(21)]
    here = InstructorEncoder(tiny_path, precision="int8").encode(texts, DOC_INSTRUCTION, batch_size=4)
    with InstructorEncoder(tiny_path, precision="int8", num_workers=2) as pooled:
        got = pooled.encode(texts, DOC_INSTRUCTION, batch_size=4, priority="bulk")
        assert pooled._pool is not None and pooled._pool.started
    np.testing.assert_allclose(got, here, atol=1e-6)  # the same batches, the same graph


def test_a_missing_runtime_names_the_extra(tiny_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r'pip install "instructor-integrations\[int8\]"'):
        InstructorEncoder(tiny_path, precision="int8")


def test_cli_eval_and_serve_take_int8(cache: Path, minilm: str, embed_server, tmp_path: Path) -> None:
    import httpx

    command = [sys.executable, "-m", "instructor_integrations.cli", "eval", "--data", str(FIXTURES / "mini-sts")]
    command += ["--model", minilm, "--no-instructions", "--json"]
    scores = {}
    for precision in ("exact", "int8"):
        done = subprocess.run([*command, "--precision", precision], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        result = json.loads(done.stdout)
        assert result["precision"] == precision
        scores[precision] = result["metrics"]["cos_spearman"]
    assert abs(scores["int8"] - scores["exact"]) <= 5.0, scores  # a 30-pair fixture: close, not equal

    server = embed_server(tmp_path, "--precision", "int8", model=minilm).start()
    texts = corpus_texts()[:6]
    response = httpx.post(f"{server.url}/v1/embeddings", json={"input": texts, "instruction": None}, timeout=60)
    assert response.status_code == 200, response.text
    got = np.asarray([item["embedding"] for item in response.json()["data"]], dtype=np.float32)
    expected = InstructorEncoder(minilm, precision="int8").encode(texts)
    np.testing.assert_allclose(got, expected, atol=1e-5)
