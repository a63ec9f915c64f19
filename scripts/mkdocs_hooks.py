"""MkDocs hook: fill generated tables from the package data at build time."""

from __future__ import annotations

from typing import Any

MARKER = "<!-- presets-table -->"


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
    """Replace the presets marker with the generated table."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, presets_table())
    return markdown
