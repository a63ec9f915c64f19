"""Unsafe models and the network: no pickle code runs, no remote code by default, no network at import."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from instructor_integrations import InstructorEncoder, ModelLoadError
from instructor_integrations.cli import build_parser


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def test_pickled_weights_do_not_run_code(tmp_path: Path, tiny_path: str) -> None:
    folder = tmp_path / "evil-instructor"
    shutil.copytree(tiny_path, folder)
    marker = tmp_path / "marker"
    (folder / "2_Dense" / "pytorch_model.bin").write_bytes(pickle.dumps({"linear.weight": _Payload(marker)}))
    with pytest.raises((ModelLoadError, pickle.UnpicklingError, RuntimeError)):
        InstructorEncoder(str(folder), device="cpu")
    assert not marker.exists()


def test_the_cli_offers_no_remote_code() -> None:
    # The encoder passes trust_remote_code=False to the loader unless asked: test_encoder_errors.py.
    help_text = build_parser().format_help() + "".join(
        action.format_help() for action in build_parser()._subparsers._group_actions[0].choices.values()
    )
    assert "remote" not in help_text


NO_NETWORK = """
import socket
def refuse(*args, **kwargs):
    raise RuntimeError(f"network used at import time: {args}")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import instructor_integrations
import instructor_integrations.instructions, instructor_integrations.evaluation, instructor_integrations.cli
import sys
for name in ("langchain_core", "llama_index", "chromadb", "ray"):
    assert name not in sys.modules, name
for optional in ("instructor_integrations.langchain", "instructor_integrations.llama_index",
                 "instructor_integrations.chroma", "instructor_integrations.vectorstores"):
    try:
        __import__(optional)
    except ImportError:
        pass
print("ok")
"""


def test_no_network_and_no_framework_at_import() -> None:
    out = subprocess.run([sys.executable, "-c", NO_NETWORK], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok")
