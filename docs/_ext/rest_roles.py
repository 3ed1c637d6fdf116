"""Griffe extension: the source's reST cross-reference markup, rendered as the reference's links.

The docstrings are Google style (``Args:``, ``Returns:``, ``Raises:``) but
write cross-references the Sphinx way -- ``:class:`~lazybridge.tools.Tool```
-- and introduce examples with a ``::`` literal-block marker.  Rendered as
Markdown those show as raw text.  This rewrites each docstring when griffe
loads it, before mkdocstrings parses it:

* ``:role:`~a.b.Name``` / ``:role:`title <a.b.Name>``` becomes a link to
  the name's heading in the API reference when the name is public (found
  through the ``__all__`` of the documented modules, so a reference into a
  private module links to the public name), and inline code otherwise;
* a line ending in ``::`` loses one colon (a line that is only ``::`` is
  dropped): the indented block after it is a Markdown code block already.

Used by mkdocs.yml (``extensions:``); tests/test_docs_reference.py checks
that no raw markup reaches the built site.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

import griffe

#: The modules the API reference documents, in the order a short name is looked up.
DOCUMENTED = (
    "lazybridge.envelope",
    "lazybridge.errors",
    "lazybridge.tools",
    "lazybridge.session",
    "lazybridge.session.otel",
    "lazybridge.testing",
    "lazybridge.engines.base",
    "lazybridge.providers",
    "lazybridge",
)
EXTRA = {
    "ModelClient": "lazybridge.providers.base.ModelClient",
}

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|exc|data|obj|ref|const):`(?P<body>[^`]+)`(?P<s>s\b)?")
LITERAL = re.compile(r"^(?P<indent>[ \t]*)(?P<text>.*?)::[ \t]*$", re.M)


def _public_names() -> dict[str, str]:
    names: dict[str, str] = dict(EXTRA)
    for module_name in DOCUMENTED:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            names.setdefault(name, f"{module_name}.{name}")
    events = importlib.import_module("lazybridge.events")
    for name in dir(events):
        if name.endswith("Event") and isinstance(getattr(events, name), type):
            names.setdefault(name, f"lazybridge.events.{name}")
    return names


PUBLIC = _public_names()


def _target(path: str) -> str | None:
    """The reference heading for a dotted path, or None when it is not documented there."""
    parts = [p for p in path.strip().lstrip("~.").split(".") if p]
    if not parts or any(p.startswith("_") and not p.startswith("__") for p in parts):
        # A private module or member: link the public class if the last class-like part is public.
        for i in range(len(parts) - 1, -1, -1):
            if parts[i] in PUBLIC and not any(p.startswith("_") and not p.startswith("__") for p in parts[i + 1 :]):
                return PUBLIC[parts[i]] + "".join(f".{p}" for p in parts[i + 1 :])
        return None
    for i in range(len(parts)):
        if parts[i] in PUBLIC:
            return PUBLIC[parts[i]] + "".join(f".{p}" for p in parts[i + 1 :])
    return None


def _role(match: re.Match[str]) -> str:
    body = match.group("body").strip()
    titled = re.fullmatch(r"(?P<title>.+?)\s*<(?P<path>[^>]+)>", body)
    if titled:
        title, path = titled.group("title"), titled.group("path")
    else:
        path = body
        title = body.lstrip("~").split(".")[-1] if body.startswith("~") else body.lstrip(".")
    title = title.strip()
    target = _target(path.split("(")[0])
    code = f"`{title}`"
    plural = match.group("s") or ""
    return (f"[{code}][{target}]" if target else code) + plural


def rewrite(text: str) -> str:
    """A docstring's reST roles and ``::`` markers as Markdown (see the module docstring)."""
    text = ROLE.sub(_role, text)

    def literal(match: re.Match[str]) -> str:
        words = match.group("text").rstrip()
        if not words:
            return ""
        return f"{match.group('indent')}{words}:"

    return LITERAL.sub(literal, text)


class RestRoles(griffe.Extension):
    """Rewrite every loaded docstring with :func:`rewrite`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
