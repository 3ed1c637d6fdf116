"""Record the cassettes the main suite replays (tests/integration/test_real_cassettes.py).

Every run records from the real servers into a temporary folder and replays
that recording with nothing listening, so recording real traffic is tested
each time.  With ``--record-cassettes`` the asyncio run writes
``tests/cassettes/`` instead: commit those files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lazybridge.testing import Cassette

from . import scenarios
from .conftest import Server, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]


def target(request: pytest.FixtureRequest, tmp_path: Path, committed: Path, backend: str) -> Path:
    if request.config.getoption("--record-cassettes") and backend == "asyncio":
        return committed
    return tmp_path / committed.name


async def test_record_llama_server_chat(
    llama_server: Server, request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: tuple[str, object]
) -> None:
    path = target(request, tmp_path, scenarios.LLAMA_SERVER_CHAT, anyio_backend[0])
    async with Cassette(path, mode="record").client(timeout=60.0) as client:
        live = await scenarios.chat(llama_server.base_url, client)
    assert live.plain.ok and live.streamed.ok and live.structured.ok, (live.plain, live.structured)
    assert len(live.deltas) > 1
    exchanges = json.loads(path.read_text())["exchanges"]
    assert len(exchanges) == 3 and len(exchanges[1]["response"]["chunks"]) > 1  # the stream, as it came

    nowhere = f"http://127.0.0.1:{free_port()}/v1"
    async with Cassette(path).client() as client:
        again = await scenarios.chat(nowhere, client)
    assert again.plain.text() == live.plain.text()
    assert again.deltas == live.deltas
    assert again.structured.payload == live.structured.payload


async def test_record_llama_cpp_python_tool_loop(
    llama_cpp_python: Server,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    anyio_backend: tuple[str, object],
) -> None:
    path = target(request, tmp_path, scenarios.LLAMA_CPP_PYTHON_TOOLS, anyio_backend[0])
    async with Cassette(path, mode="record").client(timeout=60.0) as client:
        live = await scenarios.tool_loop(llama_cpp_python.base_url, client)
    assert live.error is not None and live.error.type == "MaxTurnsExceeded", live.error
    assert len(json.loads(path.read_text())["exchanges"]) == 2

    nowhere = f"http://127.0.0.1:{free_port()}/v1"
    async with Cassette(path).client() as client:
        again = await scenarios.tool_loop(nowhere, client)
    assert again.error == live.error
    assert (again.metadata.input_tokens, again.metadata.output_tokens) == (
        live.metadata.input_tokens,
        live.metadata.output_tokens,
    )
