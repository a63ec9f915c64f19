"""Experiment: does overlapping host work (tokenization, Python) with GPU compute pay?

Two encoder instances (own tokenizer each) encode halves of the workload from two threads; their
kernels share the GPU, their host work overlaps. Compared with one encoder on the whole workload.
"""

from __future__ import annotations

import os
import tempfile
import threading
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
    n = len(tokenizer(instruction.strip())["input_ids"]) - 1
    flops = sum(flops_per_text(min(512, x + n), ARCHS["large"]) for x in lengths)
    encoders = [
        InstructorEncoder(path, device="cuda", precision="fast", batch_size=1024, token_budget=65536) for _ in range(2)
    ]
    for encoder in encoders:
        encoder.encode(texts[:512], instruction)
    torch.cuda.synchronize()
    start = time.perf_counter()
    encoders[0].encode(texts, instruction)
    torch.cuda.synchronize()
    one = time.perf_counter() - start
    halves = [texts[0::2], texts[1::2]]
    start = time.perf_counter()
    threads = [threading.Thread(target=e.encode, args=(h, instruction)) for e, h in zip(encoders, halves, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    torch.cuda.synchronize()
    two = time.perf_counter() - start
    for label, seconds in (("one encoder", one), ("two threads", two)):
        print(f"{label}: {seconds:.2f}s, {flops / seconds / 1e12:.1f} TFLOP/s, MFU {flops / seconds / 989e12:.1%}")
