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


# Two base32 characters per 10 bits: 13 table look-ups per id instead of 26
# shifts, which matters when a fan-out makes ten thousand runs.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_prefix_ms = -1
_prefix = ""


def _encode_bits(value: int, pairs: int) -> str:
    out = []
    for _ in range(pairs):
        out.append(_PAIRS[value & 1023])
        value >>= 10
    return "".join(reversed(out))


def new_run_id() -> str:
    """A new unique, time-sortable id such as ``run_01HX3Q...``."""
    global _last_ms, _last_random, _prefix_ms, _prefix
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
        if ms != _prefix_ms:
            _prefix_ms, _prefix = ms, "run_" + _encode_bits(ms, 5)  # 48-bit time -> 10 chars
        random_part = _last_random
        prefix = _prefix
    return prefix + _encode_bits(random_part, 8)  # 80 bits -> 16 chars
