"""Run ids: ``run_`` + a monotonic ULID (26 Crockford base32 characters).

ULIDs sort by creation time; within one millisecond the random part is
incremented, so ids made in one process are strictly increasing and unique.
"""

from __future__ import annotations

import random
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_lock = threading.Lock()
_last_ms = -1
_last_random = 0
_rng = random.SystemRandom()


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_run_id() -> str:
    """A new unique, time-sortable id such as ``run_01HX3Q...``."""
    global _last_ms, _last_random
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same (or an earlier, if the clock stepped back) millisecond:
            # keep the last timestamp and count up so order stays strict.
            ms = _last_ms
            _last_random += 1
        else:
            _last_ms = ms
            _last_random = _rng.getrandbits(_RANDOM_BITS - 1)  # headroom to count up
        value = (ms << _RANDOM_BITS) | _last_random
    return "run_" + _encode(value)
