"""What a checkpoint is, decided from the checkpoint: the one rule for INSTRUCTOR pooling and presets.

:func:`detect_checkpoint` answers two questions about a model name or folder, once, for every part of
the package: does the model leave the instruction's tokens out of its mean pooling (INSTRUCTOR
pooling), and which of the three INSTRUCTOR checkpoints' instruction sets fits it. It looks only at
the checkpoint's own identity, never at the folders it happens to lie in:

1. the marker file this package writes into every checkpoint it saves (:data:`MARKER_FILE`);
2. the checkpoint's own pooling config (``include_prompt: false``, as sentence-transformers saves a
   model whose pooling leaves the prompt out);
3. its hub name: a name given as ``org/name``, or the repository a Hugging Face cache snapshot
   (``models--org--name/snapshots/<revision>``) belongs to;
4. the model folder's own name (its last path component, not a parent's);
5. its README (a model card naming ``hkunlp/instructor-*``).

The first rule that applies decides. An explicit ``instructor_pooling`` passed by the user always wins
over the detection (the encoder applies that). This module imports no torch.

Examples:
    >>> detect_checkpoint("hkunlp/instructor-xl")
    CheckpointKind(instructor=True, preset_model='hkunlp/instructor-xl', rule="hub name 'hkunlp/instructor-xl'")
    >>> detect_checkpoint("sentence-transformers/all-MiniLM-L6-v2").instructor
    False
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._version import __version__

__all__ = [
    "DEFAULT_PRESET_MODEL",
    "INSTRUCTOR_HUB_NAMES",
    "MARKER_FILE",
    "MARKER_FORMAT",
    "CheckpointKind",
    "detect_checkpoint",
    "read_marker",
    "write_marker",
]

logger = logging.getLogger(__name__)

#: The three checkpoints the authors published (their instruction sets are shipped as presets).
INSTRUCTOR_HUB_NAMES = ("hkunlp/instructor-base", "hkunlp/instructor-large", "hkunlp/instructor-xl")
#: Checkpoints of no known size take this instruction set, as the authors' harness does.
DEFAULT_PRESET_MODEL = "hkunlp/instructor-large"
#: The file this package writes into every checkpoint it saves.
MARKER_FILE = "instructor_integrations.json"
#: The marker's format version.
MARKER_FORMAT = 1

_NAME_MARK = re.compile(r"(?:^|[^a-z])instructor(?:$|[^a-z])", re.IGNORECASE)
_SIZE = re.compile(r"instructor[-_ ]?(base|large|xl)\b", re.IGNORECASE)
_README_MARK = re.compile(r"hkunlp/instructor|\binstructor-(base|large|xl)\b", re.IGNORECASE)
_CACHE_FOLDER = re.compile(r"^models--(?P<org>[^/\\]+?)--(?P<name>[^/\\]+)$")
_README_CHARS = 20000
_NO_RULE = "no INSTRUCTOR marker, pooling config, hub name, folder name or README"


@dataclass(frozen=True)
class CheckpointKind:
    """What :func:`detect_checkpoint` decided about a checkpoint, and why.

    Attributes:
        instructor: Whether the checkpoint pools like INSTRUCTOR (the instruction's tokens left out).
        preset_model: Whose instruction presets fit it: one of :data:`INSTRUCTOR_HUB_NAMES`.
        rule: The rule that decided, in words (for logs and ``encoder.checkpoint``).

    Examples:
        >>> kind = detect_checkpoint("/models/minilm")
        >>> kind.instructor, kind.rule
        (False, 'no INSTRUCTOR marker, pooling config, hub name, folder name or README')
    """

    instructor: bool
    preset_model: str
    rule: str


def _size_in(*texts: str) -> str | None:
    for text in texts:
        found = _SIZE.search(text)
        if found:
            return f"hkunlp/instructor-{found.group(1).lower()}"
    return None


def _own_name(name: str) -> str:
    """The last component of a hub name or path (the checkpoint's own name, not a parent's)."""
    return re.split(r"[\\/]", name.rstrip("/\\"))[-1]


def _cache_repo(folder: Path) -> str | None:
    """The hub repository a Hugging Face cache snapshot folder belongs to, if it is one."""
    parts = folder.parts
    if len(parts) >= 3 and parts[-2] == "snapshots":
        found = _CACHE_FOLDER.match(parts[-3])
        if found:
            return f"{found.group('org')}/{found.group('name')}"
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


def read_marker(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker this package wrote into a saved checkpoint, or ``None`` where there is none (or it is unreadable).

    Examples:
        >>> read_marker("tests/fixtures/tiny-instructor") is None
        True
    """
    data = _read_json(Path(folder) / MARKER_FILE)
    if not isinstance(data, dict) or not isinstance(data.get("instructor_pooling"), bool):
        return None
    return data


def write_marker(
    folder: str | os.PathLike[str], *, instructor_pooling: bool, preset_model: str, base_model: str | None = None
) -> Path:
    """Write the marker that records a saved checkpoint's kind (read back by :func:`detect_checkpoint`).

    Args:
        folder: The saved checkpoint's folder.
        instructor_pooling: Whether the checkpoint pools like INSTRUCTOR.
        preset_model: Whose instruction presets fit it (one of :data:`INSTRUCTOR_HUB_NAMES`).
        base_model: The checkpoint it was made from, for the record.

    Returns:
        The marker's path.

    Raises:
        ValueError: ``preset_model`` is not one of the three checkpoints.
    """
    if preset_model not in INSTRUCTOR_HUB_NAMES:
        raise ValueError(f"preset_model must be one of {', '.join(INSTRUCTOR_HUB_NAMES)}, got {preset_model!r}")
    path = Path(folder) / MARKER_FILE
    marker = {
        "format": MARKER_FORMAT,
        "instructor_pooling": bool(instructor_pooling),
        "preset_model": preset_model,
        "base_model": base_model,
        "written_by": f"instructor-integrations {__version__}",
    }
    path.write_text(json.dumps(marker, indent=2) + "\n", "utf-8")
    return path


def _pooling_excludes_prompt(folder: Path) -> bool:
    """Whether the checkpoint's own pooling module config says ``include_prompt: false``."""
    modules = _read_json(folder / "modules.json")
    entries = modules if isinstance(modules, list) else []
    paths = [
        str(entry.get("path", ""))
        for entry in entries
        if isinstance(entry, dict) and str(entry.get("type", "")).endswith("Pooling")
    ]
    for relative in paths or ["1_Pooling"]:
        config = _read_json(folder / relative / "config.json")
        if isinstance(config, dict) and config.get("include_prompt") is False:
            return True
    return False


def _readme(folder: Path) -> str:
    try:
        return (folder / "README.md").read_text("utf-8", errors="replace")[:_README_CHARS]
    except OSError:
        return ""


def _by_name(hub_name: str, rule: str) -> CheckpointKind | None:
    """The hub-name and own-name rules: one of the three names, or an own name holding ``instructor``."""
    if hub_name.lower() in INSTRUCTOR_HUB_NAMES:
        return CheckpointKind(True, hub_name.lower(), f"{rule} {hub_name!r}")
    own = _own_name(hub_name)
    if _NAME_MARK.search(own):
        return CheckpointKind(True, _size_in(own) or DEFAULT_PRESET_MODEL, f"{rule} {own!r}")
    return None


def _from_files(folder: Path, readme: str) -> CheckpointKind | None:
    """The rules that read the checkpoint's own files: marker, pooling config."""
    marker = read_marker(folder)
    if marker is not None:
        preset = marker.get("preset_model")
        preset = preset if preset in INSTRUCTOR_HUB_NAMES else DEFAULT_PRESET_MODEL
        return CheckpointKind(marker["instructor_pooling"], preset, f"this package's marker {MARKER_FILE}")
    if _pooling_excludes_prompt(folder):
        preset = _size_in(folder.name, readme) or DEFAULT_PRESET_MODEL
        return CheckpointKind(True, preset, "its pooling config (include_prompt false)")
    return None


def detect_checkpoint(model_name_or_path: str | os.PathLike[str]) -> CheckpointKind:
    """Decide from the checkpoint itself whether it pools like INSTRUCTOR, and whose presets fit it.

    The rules, in order (the first that applies decides): this package's marker, the checkpoint's
    pooling config, its hub name (or the hub repository of a cache snapshot), the model folder's own
    name, its README. A parent folder's name never counts: the same files embed the same way wherever
    they lie.

    Examples:
        >>> detect_checkpoint("tests/fixtures/tiny-instructor").rule
        "folder name 'tiny-instructor'"
        >>> detect_checkpoint("/work/instructor-integrations/minilm").instructor
        False
    """
    name = os.fspath(model_name_or_path)
    folder = Path(name).expanduser()
    is_folder = folder.is_dir()
    readme = _readme(folder) if is_folder else ""
    if is_folder:
        found = _from_files(folder, readme)
        if found is not None:
            return found
    repo = _cache_repo(folder)
    if repo is not None:  # a snapshot folder is named by its revision: the repository is the checkpoint's name
        return _by_name(repo, "Hugging Face cache of") or CheckpointKind(
            False, DEFAULT_PRESET_MODEL, f"Hugging Face cache of {repo!r}, not an INSTRUCTOR name"
        )
    found = _by_name(name if not is_folder else folder.name, "folder name" if is_folder else "hub name")
    if found is not None:
        return found
    if readme and _README_MARK.search(readme):
        return CheckpointKind(True, _size_in(readme) or DEFAULT_PRESET_MODEL, "its README names INSTRUCTOR")
    return CheckpointKind(False, DEFAULT_PRESET_MODEL, _NO_RULE)
