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
RESULTS = re.compile(r"<!-- results: ([a-z0-9_]+) -->")
BENCHMARKS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def machine_line(data: dict[str, Any]) -> str:
    m = data.get("machine", {})
    if "gpu" in m:
        hardware = f"{m['gpu']}, {m.get('cores', '?')} CPU cores"
    elif "cpu_bf16_flags" in m:  # recorded since the bf16 flags were; older results say only the CPU
        hardware = f"{m.get('cores', '?')} cores, {', '.join(m['cpu_bf16_flags']) or 'no bf16'}"
    else:
        hardware = f"{m.get('cores', '?')} cores"
    return (
        f"*Measured on {m.get('cpu', '?')} ({hardware}), torch {m.get('torch', '?')}, "
        f"commit {m.get('commit', '?')}: `{data['_path']}`.*"
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


def encoder_throughput_table(data: dict[str, Any]) -> str:
    workload = data.get("workload", {})
    rows = [
        f"{workload.get('docs', '?')} SciFact abstracts + {workload.get('queries', '?')} queries, "
        f"{workload.get('tokens', 0):,} tokens, instructor-{data.get('arch', 'base')} architecture; "
        f"{data.get('rounds', 1)} round(s), ratio = median of per-round ratios.",
        "",
        "| variant | tokens/s | vs sentence-transformers fp32 |",
        "| --- | --- | --- |",
    ]
    for name, row in data["results"].items():
        rows.append(f"| `{name}` | {row['tokens_per_s']:,.0f} | {row['speedup']}x |")
    return "\n".join(rows)


def scifact_ingest_table(data: dict[str, Any]) -> str:
    rows = [
        f"{data.get('documents', '?'):,} SciFact documents into Chroma, {data.get('rounds', 1)} round(s).",
        "",
        "| variant | documents/s | vs sentence-transformers fp32 | nDCG@10 (exact search) |",
        "| --- | --- | --- | --- |",
    ]
    for name, row in data["results"].items():
        ndcg = row.get("ndcg@10_exact_search", row.get("ndcg@10", "-"))
        rows.append(f"| `{name}` | {row['docs_per_s']} | {row['speedup']}x | {ndcg} |")
    return "\n".join(rows)


def gpu_table(data: dict[str, Any]) -> str:
    workload = data.get("workload", {})
    rows = [
        f"{workload.get('texts', 0):,} texts, mean {workload.get('mean_tokens', 0):.0f} tokens, instructor-"
        f"{data.get('arch', 'large')} architecture, {data.get('device', 'GPU')}; MFU against "
        f"{data.get('peak_bf16_tflops', '?')} TFLOP/s bf16.",
        "",
        "| setting | tokens/s | MFU |",
        "| --- | --- | --- |",
    ]
    for name, row in data["results"].items():
        rows.append(f"| {name} | {row['tokens_per_s']:,} | {100 * row['mfu']:.1f}% |")
    return "\n".join(rows)


def concurrency_table(data: dict[str, Any]) -> str:
    q, d, e = data["concurrent_queries"], data["queries_during_ingest"], data["exactness"]
    return "\n".join(
        [
            "| measure | value |",
            "| --- | --- |",
            f"| concurrent `aembed_query` / one `encode` call, queries/s | {q['concurrent_aembed_query_qps']:.0f} / "
            f"{q['one_encode_call_qps']:.0f} ({q['ratio']:.2f}x) |",
            f"| query p99 during a {d['documents']:,}-document ingest | {d['during_ingest_p99_ms']:.0f} ms (bound: "
            f"longest bulk pass {d['longest_bulk_batch_ms']:.0f} ms + 3 x idle p99 {d['idle_p99_ms']:.0f} ms = "
            f"{d['bound_ms']:.0f} ms) |",
            f"| ingest wall time with queries / alone | {1 + d['ingest_growth']:.3f}x |",
            f"| {e['threads']} threads x {e['calls_per_thread']} calls against a serial run | largest difference "
            f"{e['max_abs_diff']:.1e} |",
        ]
    )


def adapter_overhead_table(data: dict[str, Any]) -> str:
    rows = [f"{data['texts']:,} STS sentences.", "", "| path | seconds | vs the core encoder |", "| --- | --- | --- |"]
    for name, row in data["results"].items():
        rows.append(f"| {name} | {row['seconds']} | {row['ratio_to_core']}x |")
    return "\n".join(rows)


def ingest_memory_table(data: dict[str, Any]) -> str:
    rows = ["| documents | peak RSS | seconds |", "| --- | --- | --- |"]
    for row in data["rows"]:
        rows.append(f"| {row['documents']:,} | {row['peak_rss_mib']:,.0f} MiB | {row['seconds']} |")
    rows += ["", f"Peak memory, largest over smallest: {data['ratio']}x."]
    return "\n".join(rows)


def finetune_table(data: dict[str, Any]) -> str:
    test, dev, settings = data["test"], data["dev"], data["settings"]
    rows = ["| SciFact | before | after | change |", "| --- | --- | --- | --- |"]
    for name, scores in (("test", test), ("dev (chose the checkpoint)", dev)):
        for metric in ("ndcg@10", "recall@100"):
            before, after = scores["before"][metric], scores["after"][metric]
            rows.append(f"| {name} {metric} | {before:.2f} | {after:.2f} | {after - before:+.2f} |")
    rows.append("")
    rows.append(
        f"{sum(data['train_rows'].values())} training rows, {data['steps']} steps of {settings['batch_size']}, "
        f"learning rate {settings['learning_rate']}, temperature {settings['temperature']}, "
        f"{settings['hard_negatives']} mined hard negative(s) per row, max_seq_length {settings['max_seq_length']}; "
        f"training {data['training_seconds'] / 60:.1f} min, the whole run (mining and every scoring "
        f"included) {data['wall_seconds'] / 60:.1f} min."
    )
    return "\n".join(rows)


def mteb_table(data: dict[str, Any]) -> str:
    rows = [
        "| task | metric | MTEB's harness | this package's evaluation | published |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in data["results"]:
        rows.append(
            f"| {row['task']} | {row['metric']} | {row['mteb_harness']:.2f} | {row['package_evaluation']:.2f} "
            f"| {row['published']:.2f} |"
        )
    rows += ["", f"{data['model']} through `InstructorMTEBModel`, mteb {data['mteb']}."]
    return "\n".join(rows)


def _masked(data: dict[str, Any]) -> str:
    """How the CPU class was made, where a CPUID mask made it (``scripts/avx2only``)."""
    if data["machine"].get("cpuid_mask") != "avx2only":
        return ""
    return (
        f" ({data['machine']['cpu']} with AVX-512, VNNI and AMX hidden by `scripts/avx2only`: every library ran "
        "its AVX2 kernels, on this CPU's cores)"
    )


def int8_table(data: dict[str, Any]) -> str:
    rows = [
        f"CPU class: **{data['cpu_class']}**{_masked(data)}. {data['rounds']} round(s) of fresh processes; "
        "each ratio is the median of the per-round ratios to `exact`.",
        "",
        "| model | documents (tokens) | variant | tokens/s | vs `exact` | cosine to `exact`, min |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    names = {"base": "instructor-base architecture (random weights)", "minilm": "all-MiniLM-L6-v2"}
    for model, result in data["models"].items():
        for variant, row in result["variants"].items():
            rows.append(
                f"| {names.get(model, model)} | {result['docs']} ({result['tokens']:,}) | `{variant}` | "
                f"{row['tokens_per_s']:,.0f} | {row['vs_exact']}x | {row['cosine_to_exact_min']} |"
            )
    builds = ", ".join(f"{model} {result['build_seconds']} s" for model, result in data["models"].items())
    rows += ["", f"Building the int8 graph, once per checkpoint: {builds}."]
    quality = data.get("quality")
    if quality:
        rows += [
            "",
            "| all-MiniLM-L6-v2, no instructions | metric | `exact` | `int8` | int8 - exact |",
            "| --- | --- | --- | --- | --- |",
        ]
        for dataset in ("scifact", "stsbenchmark"):
            q = quality[dataset]
            rows.append(f"| {dataset} | {q['metric']} | {q['exact']:.2f} | {q['int8']:.2f} | {q['difference']:+.2f} |")
        rows += [
            "",
            f"Tiny INSTRUCTOR checkpoint, golden vectors: int8 cosine at least {quality['tiny_golden_cosine_min']}.",
        ]
    return "\n".join(rows)


RENDERERS = {
    "int8": int8_table,
    "mteb": mteb_table,
    "finetune": finetune_table,
    "chunking": chunking_table,
    "serve_load": serve_load_table,
    "encoder_throughput": encoder_throughput_table,
    "scifact_ingest": scifact_ingest_table,
    "gpu_throughput": gpu_table,
    "concurrency": concurrency_table,
    "adapter_overhead": adapter_overhead_table,
    "ingest_memory": ingest_memory_table,
}


def results_block(name: str) -> str:
    """The table of ``docs/benchmarks/NAME.json`` (the renderer of the longest matching prefix)."""
    path = BENCHMARKS / f"{name}.json"
    data = json.loads(path.read_text("utf-8"))
    data["_name"] = name
    root = Path(__file__).resolve().parents[1]
    data["_path"] = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    renderer = RENDERERS[max((key for key in RENDERERS if name.startswith(key)), key=len)]
    return renderer(data) + "\n\n" + machine_line(data)


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
