"""JSON Schema in the subset that OpenAI's strict mode (constrained decoding) accepts.

Strict mode compiles the schema into a grammar before decoding, and refuses
a schema it cannot compile with a 400.  It wants every object *closed*
(``additionalProperties: false``) with *every* property listed in
``required``, and no ``default`` keyword.  :func:`strict_schema` rewrites a
schema that LazyBridge built (or a pydantic model's) into that shape:

* an optional property stays optional in value only: the model must send
  it, and a ``None``-able type (``X | None``) lets it send ``null``; the
  answer is then parsed exactly as before, so a field with a default gets
  the model's value instead of the default;
* ``default`` is dropped (the model must send a value anyway);
* a map (``dict[str, X]``: an object whose ``additionalProperties`` is a
  schema or ``true``, one with ``patternProperties``, or one with neither
  properties nor ``additionalProperties``) has no fixed keys to list, so
  the schema cannot be strict: ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["strict_schema"]

# Keywords whose value is a mapping of name -> subschema, a list of
# subschemas, or one subschema.  Everything else is copied as it is, so a
# *property* named "default" or "required" is never mistaken for a keyword.
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SCHEMA_ONE = frozenset({"items", "not", "additionalProperties", "contains"})


class _OpenObject(Exception):
    """The schema has a map, which strict mode cannot express."""


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """``schema`` rewritten for strict mode, or ``None`` when it cannot be strict (a map)."""
    try:
        return _node(schema)
    except _OpenObject:
        return None


def _node(node: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "default":
            continue
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: _sub(sub) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_sub(sub) for sub in value]
        elif key in _SCHEMA_ONE and isinstance(value, Mapping):
            out[key] = _node(value)
        else:
            out[key] = value
    if _is_object(node):
        properties = out.get("properties")
        extra = node.get("additionalProperties")
        open_keys = isinstance(extra, Mapping) or extra is True or "patternProperties" in node
        if open_keys or (not properties and extra is None):
            raise _OpenObject
        out["additionalProperties"] = False
        out["required"] = list(properties or ())
    return out


def _sub(value: Any) -> Any:
    return _node(value) if isinstance(value, Mapping) else value


def _is_object(node: Mapping[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node
