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
# Within a millisecond the random part only counts up, so its top 60 bits
# change about once per millisecond: their 12 characters (and the 10 of the
# timestamp) are kept, and an id costs two look-ups for the low 20 bits.
_LOW_BITS = 20
_head_key: tuple[int, int] = (-1, -1)
_head = ""


def _encode_bits(value: int, pairs: int) -> str:
    out = []
    for _ in range(pairs):
        out.append(_PAIRS[value & 1023])
        value >>= 10
    return "".join(reversed(out))


def new_run_id() -> str:
    """A new unique, time-sortable id such as ``run_01HX3Q...``."""
    global _last_ms, _last_random, _head_key, _head
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
        random_part = _last_random
        key = (ms, random_part >> _LOW_BITS)
        if key != _head_key:
            # 48-bit time -> 10 characters, top 60 random bits -> 12.
            _head_key, _head = key, "run_" + _encode_bits(ms, 5) + _encode_bits(key[1], 6)
        head = _head
    return head + _PAIRS[(random_part >> 10) & 1023] + _PAIRS[random_part & 1023]
