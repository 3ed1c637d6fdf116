"""The API reference is complete and readable: built with mkdocs, inspected as HTML.

The site is built once per test session into a temporary directory (a few
seconds).  Every name of the pinned public surface (tests/unit/
test_public_surface.py) must have its own heading in the reference, under the
module that exports it or, for a top-level name re-exported from a documented
submodule, under that submodule.  And no page may show raw reST markup as
text -- ``:class:`X```, ``:meth:``, a ``::`` literal-block marker --
which is what Sphinx-style docstrings look like when rendered as Google style.
"""

from __future__ import annotations

import html
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_public_surface import OPTIONAL_SURFACE, SURFACE

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).with_name("mkdocs")

pytestmark = pytest.mark.skipif(not MKDOCS.exists(), reason="mkdocs is not installed (the docs extra)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return out


def _article_text(page: Path) -> str:
    """The page's main column as plain text (no navigation, scripts or code blocks)."""
    source = page.read_text(encoding="utf-8")
    article = source[source.find("<article") : source.find("</article>")]
    article = re.sub(r"<(script|style|pre|code)\b[^>]*>.*?</\1>", " ", article, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", article))


def _heading_ids(page: Path) -> set[str]:
    return set(re.findall(r'<h[1-6][^>]*\bid="([^"]+)"', page.read_text(encoding="utf-8")))


def _home(module_name: str, name: str) -> str:
    """Where a name is documented: the documented submodule that defines it, else where it is exported."""
    if module_name in OPTIONAL_SURFACE:
        return module_name  # needs an extra to import; defined where it is exported
    obj = getattr(importlib.import_module(module_name), name)
    for other, names in SURFACE.items():
        if other != module_name and name in names and getattr(importlib.import_module(other), name) is obj:
            if module_name == "lazybridge":
                return other
    return module_name


CASES = [(module, name) for module, names in sorted({**SURFACE, **OPTIONAL_SURFACE}.items()) for name in names]


@pytest.mark.parametrize(("module_name", "name"), CASES, ids=[f"{m}.{n}" for m, n in CASES])
def test_every_public_name_has_a_heading_in_the_reference(site: Path, module_name: str, name: str) -> None:
    ids = _heading_ids(site / "reference" / "index.html")
    home = _home(module_name, name)
    assert f"{home}.{name}" in ids, f"{module_name}.{name} has no heading (looked for #{home}.{name})"


def test_documented_classes_show_their_methods_and_fields(site: Path) -> None:
    """The members the issue found missing: Agent's inherited run API, Envelope's fields and JSON methods."""
    ids = _heading_ids(site / "reference" / "index.html")
    for member in ("run", "__call__", "stream", "as_tool", "parallel", "chain"):
        assert f"lazybridge.Agent.{member}" in ids, member
    for member in ("task", "payload", "metadata", "error", "ok", "text", "to_json", "from_json", "to_dict"):
        assert f"lazybridge.envelope.Envelope.{member}" in ids, member
    for member in ("cost_usd", "input_tokens", "nested_cost_usd", "latency_ms", "run_id"):
        assert f"lazybridge.envelope.EnvelopeMetadata.{member}" in ids, member
    for member in ("type", "message", "retryable"):
        assert f"lazybridge.envelope.ErrorInfo.{member}" in ids, member


#: Objects a newcomer constructs or calls first: each must show a parameter table.
WITH_PARAMETERS = (
    "lazybridge.Agent",
    "lazybridge.Agent.run",
    "lazybridge.Agent.__call__",
    "lazybridge.Agent.stream",
    "lazybridge.Agent.as_tool",
    "lazybridge.Agent.chain",
    "lazybridge.LLMEngine",
    "lazybridge.ParallelAgent",
    "lazybridge.Plan",
    "lazybridge.Step",
    "lazybridge.Memory",
    "lazybridge.tools.Tool.from_function",
    "lazybridge.session.Session",
    "lazybridge.session.JsonlExporter",
    "lazybridge.session.SQLiteExporter",
    "lazybridge.testing.FakeProvider",
    "lazybridge.testing.MockAgent",
    "lazybridge.testing.ScriptedModel",
    "lazybridge.testing.serve_fake_provider",
)


def _sections(page: Path) -> dict[str, str]:
    """Each documented object's HTML, from its heading to the next object's heading."""
    parts = re.split(r'<h[2-6][^>]*\bid="(lazybridge[^"]*)"', page.read_text(encoding="utf-8"))
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("ident", WITH_PARAMETERS)
def test_parameters_render_as_a_table(site: Path, ident: str) -> None:
    """Google-style ``Args:`` sections become parameter tables (under sphinx style they collapse into prose)."""
    section = _sections(site / "reference" / "index.html")[ident]
    assert re.search(r"<table>.*?Name.*?Type.*?Description", section, re.S), f"{ident}: no parameter table"


# Code spans and blocks are removed first, so a role shows as ":class:" before a gap.
RAW_REST = re.compile(r":(py:)?(class|meth|func|mod|attr|exc|data|obj|ref|const):|::\s*$", re.M)


def test_no_page_shows_raw_rest_markup(site: Path) -> None:
    shown = {}
    for page in sorted(site.rglob("*.html")):
        if "assets" in page.parts or page.name == "404.html":
            continue
        found = [m.group(0).strip() for m in RAW_REST.finditer(_article_text(page))]
        if found:
            shown[str(page.relative_to(site))] = found[:5]
    assert not shown, f"raw reST markup shown as text: {shown}"


def test_pictures_are_local_files_and_no_page_loads_a_remote_script(site: Path) -> None:
    """The runtime pictures render offline: every image is a file of the site, no script comes from a CDN."""
    images = 0
    for page in sorted(site.rglob("*.html")):
        source = page.read_text(encoding="utf-8")
        assert not re.search(r'<script[^>]+src="(https?:)?//', source), page
        for src in re.findall(r'<img[^>]+src="([^"]+)"', source):
            assert not re.match(r"(https?:)?//", src), (page, src)
            assert (page.parent / src).resolve().is_file(), (page, src)
            images += 1
    assert images >= 4


#: Characters of a code line that fit the column at 1280 px (docs/stylesheets/extra.css).
CODE_COLUMNS = 88


def test_code_lines_fit_the_column() -> None:
    """A longer line scrolls sideways at 1280 px, hiding its end (the issue counted 59 such lines)."""
    too_long = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        in_block = False
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_block = not in_block
            elif in_block and len(line) > CODE_COLUMNS:
                too_long.append(f"{page.relative_to(ROOT)}:{number} ({len(line)})")
    assert not too_long, too_long
