"""Every Python code block in docs/ and README.md runs, page by page.

The blocks of one page share a namespace, in order, like a notebook.  A
block whose first line is ``# not run: <reason>`` shows another library's
code and is skipped (the reason is part of the page).  The pages of
:data:`RAY_PAGES` run in the Ray stage (``pytest tests/ray``).  Blocks that
``await`` at top level run inside an event loop on both backends.  Model
calls go to the fake provider server on loopback, never to the internet.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

import lazybridge

ROOT = Path(__file__).resolve().parents[1]
#: Pages whose blocks need Ray: run by the Ray stage (tests/ray/test_docs_page.py), not here.
RAY_PAGES = [ROOT / "docs" / "scaling-out.md"]
PAGES = sorted({*ROOT.joinpath("docs").rglob("*.md"), ROOT / "README.md"} - set(RAY_PAGES))
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path) -> list[str]:
    blocks = [m.group(1) for m in FENCE.finditer(page.read_text(encoding="utf-8"))]
    return [b for b in blocks if not b.startswith("# not run:")]


def run_page(page: Path, backend: str) -> None:
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for block in python_blocks(page):
        code = compile(block, str(page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        if code.co_flags & inspect.CO_COROUTINE:

            async def run_block(code: Any = code) -> None:
                try:
                    await eval(code, namespace)
                finally:
                    await lazybridge.aclose()  # what an application does before its loop ends

            anyio.run(run_block, backend=backend)
        else:
            exec(code, namespace)


def _has_await(page: Path) -> bool:
    return any("await " in block for block in python_blocks(page))


CASES = [
    pytest.param(page, backend, id=f"{page.relative_to(ROOT)}-{backend}")
    for page in PAGES
    if python_blocks(page)
    # Pages without top-level await run their sync calls on the sync bridge's
    # own loop; only pages that await need a run on each backend.
    for backend in (("asyncio", "trio") if _has_await(page) else ("asyncio",))
]


@pytest.mark.parametrize(("page", "backend"), CASES)
def test_page_runs(page: Path, backend: str, fake_provider_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    run_page(page, backend)
