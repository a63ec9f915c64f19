"""Where the GPU fast path spends its time: model-only forward (upper bound) vs the whole encode call.

python benchmarks/gpu_profile.py   (after gpu.sh's setup; prints a cProfile summary)
"""

from __future__ import annotations

import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from _common import ARCHS, build_random_instructor
from gpu_throughput import flops_per_text, workload
from sentence_transformers import SentenceTransformer

from instructor_integrations import InstructorEncoder

instruction = "Represent the Science document for retrieval: "
with tempfile.TemporaryDirectory() as tmp:
    path = str(build_random_instructor(Path(tmp), "large"))
    tokenizer = SentenceTransformer(path, device="cpu").tokenizer
    texts, lengths = workload(tokenizer, 16384, 110)
    encoder = InstructorEncoder(path, device="cuda", precision="fast", batch_size=1024, token_budget=65536)
    encoder.encode(texts[:512], instruction)
    backbone = encoder.model[0].auto_model
    # model-only: pre-tokenized batches of 512 rows x 128 tokens, no Python around it
    ids = torch.randint(5, 1000, (512, 128), device="cuda")
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        for _ in range(3):
            backbone(input_ids=ids, attention_mask=mask)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(10):
            backbone(input_ids=ids, attention_mask=mask)
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / 10
    flops = 512 * flops_per_text(128, ARCHS["large"])
    print(
        f"model-only 512x128 bf16: {seconds * 1000:.1f} ms/batch, {flops / seconds / 1e12:.1f} TFLOP/s, "
        f"MFU {flops / seconds / 989e12:.1%}",
        flush=True,
    )
    start = time.perf_counter()
    s = time.perf_counter()
    counts = tokenizer(texts)
    print(f"tokenize 16384 texts: {time.perf_counter() - s:.2f}s", flush=True)
    profile = cProfile.Profile()
    profile.enable()
    start = time.perf_counter()
    encoder.encode(texts, instruction)
    torch.cuda.synchronize()
    profile.disable()
    print(f"encode 16384 texts: {time.perf_counter() - start:.2f}s", flush=True)
    pstats.Stats(profile).sort_stats("tottime").print_stats(15)
