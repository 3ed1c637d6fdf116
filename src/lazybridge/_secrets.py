"""API keys as values that never print, and the registry redaction consults.

:class:`Secret` holds one key; its ``repr`` and ``str`` are masked and
:meth:`Secret.reveal` is the only way to the value.  Every ``Secret`` of a
key long enough to be one (:data:`MIN_MASKED_LENGTH` characters) is known
to :func:`mask_configured`, which the Session's redaction and the verbose
trace run before their shape rules (``sk-...``, ``AIza...``): a key in use
is masked in their output whatever its shape -- a local gateway's
``my-team-token-42`` as surely as an OpenAI key.

What the registry keeps: weak references to the ``Secret`` objects that
engines hold anyway, grouped by a SHA-256 digest of the value (so a
thousand engines on one key cost one substring search, not a thousand).
It never holds a key alive or copies one: when the last engine using a key
is garbage collected, the key is forgotten.
"""

from __future__ import annotations

import hashlib
import threading
import weakref

import attrs

__all__ = ["MASK", "MIN_MASKED_LENGTH", "Secret", "configured_keys", "mask_configured"]

#: Keys shorter than this are not masked in arbitrary text: a key of
#: ``"k"`` or ``"test"`` (tests, local servers that ignore keys) would mask
#: every ``k`` or ``test`` of every event.  No real provider key is this short.
MIN_MASKED_LENGTH = 8
MASK = "********"

_lock = threading.Lock()
_live: dict[bytes, weakref.WeakSet[Secret]] = {}


# eq=False: compared and hashed by identity.  The registry's WeakSet holds each
# Secret as its own holder; with value equality a second Secret of the same key
# would be "already in" the set, and the first one's collection would drop the
# key from the registry while the second still held it (and unmask it).
@attrs.frozen(repr=False, eq=False)
class Secret:
    """An API key.  Its repr and str are masked; :meth:`reveal` is the only way in."""

    _value: str

    def __attrs_post_init__(self) -> None:
        if len(self._value) >= MIN_MASKED_LENGTH:
            digest = hashlib.sha256(self._value.encode()).digest()
            with _lock:
                _live.setdefault(digest, weakref.WeakSet()).add(self)

    def reveal(self) -> str:
        return self._value

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the secret masked."""
        if len(self._value) >= 4 and self._value in text:
            return text.replace(self._value, MASK)
        return text

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


def configured_keys() -> tuple[str, ...]:
    """The values of the keys some live :class:`Secret` holds, longest first.

    Longest first so that a key that contains another is masked whole.
    The tuple is the caller's to use and drop: keep it no longer than one
    redaction.
    """
    keys = []
    with _lock:
        for digest, holders in list(_live.items()):
            holder = next(iter(holders), None)
            if holder is None:
                del _live[digest]  # every engine on this key is gone
            else:
                keys.append(holder.reveal())
    keys.sort(key=len, reverse=True)
    return tuple(keys)


def mask_configured(text: str, keys: tuple[str, ...] | None = None, mask: str = MASK) -> str:
    """``text`` with every configured key (:func:`configured_keys`, or ``keys``) replaced by ``mask``."""
    for key in configured_keys() if keys is None else keys:
        if key in text:
            text = text.replace(key, mask)
    return text
