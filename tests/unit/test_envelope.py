"""Envelope: text(), errors, the branch sequence, and a lossless JSON round-trip."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lazybridge import Envelope, EnvelopeError, EnvelopeMetadata, ErrorInfo, _ids
from lazybridge._ids import new_run_id


def branch(name: str, text: str, cost: float = 0.0) -> Envelope:
    return Envelope(payload=text, metadata=EnvelopeMetadata(agent=name, cost_usd=cost))


def test_text_of_a_string_payload_is_the_string() -> None:
    assert Envelope(payload="hello").text() == "hello"


def test_text_of_no_payload_is_empty() -> None:
    assert Envelope().text() == ""


def test_text_of_branches_is_the_labelled_join() -> None:
    failed = Envelope(metadata=EnvelopeMetadata(agent="c"), error=ErrorInfo("TimeoutError", "too slow"))
    env = Envelope(payload=[branch("a", "one"), branch("b", "two"), failed])
    assert env.text() == "[a]\none\n\n[b]\ntwo\n\n[c]\n(error) too slow"


def test_str_of_payload_is_not_the_join() -> None:
    env = Envelope(payload=[branch("a", "one")])
    assert str(env.payload) != env.text()


def test_a_wrapper_is_a_sequence_of_its_branches() -> None:
    branches = [branch("a", "1"), branch("b", "2")]
    env = Envelope(payload=branches)
    assert len(env) == 2
    assert env[1] is branches[1]
    assert list(env) == branches
    assert env[:1] == branches[:1]


@pytest.mark.parametrize("payload", ["x", ["a", "b"], [], None])
def test_a_plain_envelope_has_no_branches_but_is_truthy(payload: object) -> None:
    env = Envelope(payload=payload)
    assert env
    with pytest.raises(TypeError, match="no branches"):
        len(env)
    with pytest.raises(TypeError, match="no branches"):
        env[0]
    with pytest.raises(TypeError, match="no branches"):
        list(env)


class _CountingList(list[Envelope]):
    """A branch list that counts how often it is scanned from the start."""

    scans = 0

    def __iter__(self) -> Iterator[Envelope]:
        self.scans += 1
        return super().__iter__()


def test_indexing_a_wrapper_does_not_scan_its_branches() -> None:
    """``env[i]`` looks at a constant number of branches, so an index loop is linear, not quadratic."""
    branches = _CountingList(branch(f"b{i}", str(i)) for i in range(1000))
    env = Envelope(payload=branches)
    assert [env[i].text() for i in range(1000)] == [str(i) for i in range(1000)]
    assert env[-1] is branches[-1]
    assert branches.scans == 0


def test_structured_payload_text_is_json() -> None:
    assert Envelope(payload={"a": [1, 2]}).text() == '{"a": [1, 2]}'


def test_error_envelope_takes_type_message_and_retryable() -> None:
    class Flaky(Exception):
        retryable = True

    env = Envelope.error_envelope(Flaky("try later"), task="t")
    assert not env.ok
    assert env.error == ErrorInfo("Flaky", "try later", True)
    assert env.task == "t"
    assert Envelope.error_envelope(TimeoutError()).error == ErrorInfo("TimeoutError", "TimeoutError", False)


def test_raise_for_error() -> None:
    ok = Envelope(payload="fine")
    assert ok.raise_for_error() is ok
    bad = Envelope(error=ErrorInfo("ValueError", "nope"))  # no exception object, as if read from JSON
    with pytest.raises(EnvelopeError, match="ValueError: nope") as info:
        bad.raise_for_error()
    assert info.value.envelope is bad
    assert info.value.error_type == "ValueError"


def test_raise_for_error_raises_the_kept_exception_with_its_cause() -> None:
    class Flaky(Exception):
        retryable = True

    try:
        try:
            raise OSError("socket closed")
        except OSError as cause:
            raise Flaky("try later") from cause
    except Flaky as exc:
        failure = exc
    env = Envelope.error_envelope(failure)
    assert env.error is not None and env.error.exception is failure
    with pytest.raises(Flaky, match="try later") as info:
        env.raise_for_error()
    assert info.value is failure
    assert isinstance(info.value.__cause__, OSError)


def test_the_kept_exception_is_not_compared_shown_or_serialised() -> None:
    kept = Envelope.error_envelope(ValueError("nope"), task="t")
    plain = Envelope(task="t", error=ErrorInfo("ValueError", "nope"))
    assert kept.error is not None and isinstance(kept.error.exception, ValueError)
    assert kept == plain and hash(kept.error) == hash(plain.error)
    assert repr(kept) == repr(plain) and str(kept) == str(plain)
    assert kept.to_json() == plain.to_json() and kept.to_dict() == plain.to_dict()
    assert "exception" not in kept.to_json()


def test_a_cancellation_is_never_kept_to_be_raised_again() -> None:
    """A stray cancellation turned into an envelope must not be re-raised outside its scope."""

    class Cancelled(BaseException):
        pass

    env = Envelope.error_envelope(Cancelled("stray"))
    assert env.error is not None and env.error.exception is None
    with pytest.raises(EnvelopeError, match="Cancelled: stray"):
        env.raise_for_error()


def test_from_task_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="task must be a str or an Envelope, not int"):
        Envelope.from_task(3)  # type: ignore[arg-type]


def test_from_task_passes_an_envelopes_text_on() -> None:
    source = Envelope(payload=[branch("a", "x")], context="ctx")
    assert Envelope.from_task(source) == Envelope(task="[a]\nx", context="ctx")


def test_run_ids_are_prefixed_unique_and_sortable() -> None:
    ids = [new_run_id() for _ in range(5000)]
    assert all(i.startswith("run_") and len(i) == 30 for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def _decode_ulid(run_id: str) -> tuple[int, int]:
    """(milliseconds, 80 random bits) of ``run_<26 Crockford base32 characters>``."""
    value = 0
    for char in run_id.removeprefix("run_"):
        value = value * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    return value >> 80, value & (2**80 - 1)


def test_a_run_id_is_a_ulid_of_the_current_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    ms, _ = _decode_ulid(new_run_id())
    assert before <= ms <= time.time_ns() // 1_000_000


def test_run_ids_stay_ordered_when_the_random_part_carries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting up across a 2**20 boundary within one millisecond changes the cached upper digits."""
    monkeypatch.setattr(_ids, "_last_ms", 2**47)  # a millisecond far ahead: every id reuses it
    monkeypatch.setattr(_ids, "_last_random", 2**40 + 2**20 - 3)
    ids = [new_run_id() for _ in range(6)]
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert [_decode_ulid(i) for i in ids] == [(2**47, 2**40 + 2**20 - 2 + k) for k in range(6)]


# -- JSON round-trip --------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text()
json_values = st.recursive(
    json_scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
metadata = st.builds(
    EnvelopeMetadata,
    run_id=st.none() | st.just("run_01HX0000000000000000000000"),
    agent=st.none() | st.text(max_size=10),
    model=st.none() | st.text(max_size=10),
    provider=st.none() | st.text(max_size=10),
    input_tokens=st.integers(0, 10**9),
    output_tokens=st.integers(0, 10**9),
    cost_usd=st.floats(0, 1e6, allow_nan=False),
    latency_ms=st.floats(0, 1e9, allow_nan=False),
    nested_input_tokens=st.integers(0, 10**9),
    nested_output_tokens=st.integers(0, 10**9),
    nested_cost_usd=st.floats(0, 1e6, allow_nan=False),
)
errors = st.none() | st.builds(ErrorInfo, st.text(min_size=1), st.text(), st.booleans())
leaf_envelopes = st.builds(
    Envelope,
    task=st.none() | st.text(),
    context=st.none() | st.text(),
    payload=json_values.filter(lambda v: v != []),
    metadata=metadata,
    error=errors,
)
envelopes = st.recursive(
    leaf_envelopes,
    lambda inner: st.builds(
        Envelope,
        task=st.none() | st.text(),
        payload=st.lists(inner, min_size=1, max_size=3),
        metadata=metadata,
        error=errors,
    ),
    max_leaves=6,
)


@given(envelopes)
def test_json_round_trip_is_lossless(env: Envelope) -> None:
    assert Envelope.from_json(env.to_json()) == env
    assert Envelope.from_dict(env.to_dict()) == env
