"""MkDocs hook: fill generated tables from the package data and the benchmark results at build time.

``<!-- presets-table -->`` becomes the presets table; ``<!-- results: NAME -->`` the table of
``docs/benchmarks/NAME.json`` (its renderer below), with the machine it ran on. Measured figures
in the guides come from here, never typed by hand.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

MARKER = "<!-- presets-table -->"
RESULTS = re.compile(r"<!-- results: ([a-z_]+) -->")
BENCHMARKS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def machine_line(data: dict[str, Any]) -> str:
    m = data.get("machine", {})
    flags = ", ".join(m.get("cpu_bf16_flags") or []) or "no bf16"
    return (
        f"*Measured on {m.get('cpu', '?')} ({m.get('cores', '?')} cores, {flags}), torch {m.get('torch', '?')}, "
        f"commit {m.get('commit', '?')}: `docs/benchmarks/{data['_name']}.json`.*"
    )


def chunking_table(data: dict[str, Any]) -> str:
    rows = [
        "| model (token limit) | splitter | characters/s | chunks | chunks truncated | most tokens in a chunk |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for model, result in data["models"].items():
        for name, row in result["splitters"].items():
            label = "characters (1000, overlap 200)" if name.startswith("characters") else "model tokens"
            rows.append(
                f"| {model} ({result['limit_tokens']}) | {label} | {row['characters_per_s']:,} | {row['chunks']:,} | "
                f"{row['truncated_chunks']:,} | {row['max_tokens_with_instruction']:,} |"
            )
    speeds = "; ".join(
        f"{model}: {result['embedding_characters_per_s']:,} characters/s embedded, token chunking "
        f"{result['ratio_token_chunking_over_embedding_speed']}x that"
        for model, result in data["models"].items()
    )
    corpus = data["corpus"]
    return "\n".join(
        [
            *rows,
            "",
            f"Corpus: {corpus['sections']:,} sections, {corpus['characters']:,} characters. For scale, {speeds}.",
        ]
    )


def serve_load_table(data: dict[str, Any]) -> str:
    c, one, full = data["concurrent"], data["one_at_a_time"], data["queue_full"]
    settings = data["settings"]
    return "\n".join(
        [
            "| measure | value |",
            "| --- | --- |",
            f"| {settings['requests']:,} single-text requests over {settings['concurrency']} connections | "
            f"{c['requests_per_s']} requests/s, p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms |",
            f"| errors, lost, mismatched answers | {c['errors']}, {c['lost']}, {c['mismatched']} |",
            f"| the same requests one at a time | {one['requests_per_s']} requests/s, p50 {one['p50_ms']} ms |",
            f"| concurrent / one at a time | {data['ratio_concurrent_over_one_at_a_time']}x |",
            f"| the model's own ceiling: one in-process `encode` of the same texts | "
            f"{data['in_process_one_encode_call']['texts_per_s']} texts/s "
            f"({data['ratio_one_encode_call_over_one_at_a_time']}x one at a time; the server reaches "
            f"{data['ratio_concurrent_over_one_encode_call']}x of it) |",
            f"| queue full (`--max-queued-rows 32`, {full['requests']} requests of 4 texts at once) | "
            f"{full['refused_503']} answered 503 with `Retry-After`, {full['answered_200']} answered (mismatched: "
            f"{full['mismatched']}), `/health` 200 throughout: {full['health_all_200']} |",
        ]
    )


RENDERERS = {"chunking": chunking_table, "serve_load": serve_load_table}


def results_block(name: str) -> str:
    data = json.loads((BENCHMARKS / f"{name}.json").read_text("utf-8"))
    data["_name"] = name
    return RENDERERS[name](data) + "\n\n" + machine_line(data)


def presets_table() -> str:
    """Markdown table of every preset of instructor-large, with base/xl differences marked."""
    from instructor_integrations.instructions import PRESET_MODELS, get_preset, list_presets

    rows = [
        "| dataset | category | query / single instruction | document instruction | base, xl differ |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in list_presets("hkunlp/instructor-large"):
        large = get_preset(name, "hkunlp/instructor-large")
        differs = [
            m.split("-")[-1] for m in PRESET_MODELS if m != large.model and get_preset(name, m).pair != large.pair
        ]
        document = "(same)" if large.symmetric else f"`{large.document!r}`"
        rows.append(f"| {name} | {large.category} | `{large.query!r}` | {document} | {', '.join(differs) or '-'} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace the markers with the generated tables."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, presets_table())
    return RESULTS.sub(lambda match: results_block(match.group(1)), markdown)
