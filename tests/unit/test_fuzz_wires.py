"""Fuzzing the wire formats: an answer the library cannot read is a MalformedResponseError.

Per wire format, hypothesis mutates the recorded fixtures (keys dropped,
values nulled, retyped, wrapped or unwrapped; stream events dropped,
repeated, swapped, cut, replaced by garbage; SSE bytes removed or inserted)
and checks that the parser or stream decoder either returns a well-typed
``ModelResponse`` or raises a documented ``ProviderError`` -- never an
``AttributeError``/``KeyError``/``TypeError``, and never by the parsers'
last-line guard (which would mean a shape check is missing).  Bounded to a
few seconds; ``benchmarks/fuzz.py`` is the long run.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lazybridge.errors import (
    APIStatusError,
    MalformedResponseError,
    OverloadedError,
    RateLimitError,
    ServerError,
)
from lazybridge.providers._errormap import status_error
from lazybridge.providers._http import Endpoint

from . import wire_fuzz

WIRES = wire_fuzz.wires()
ERROR_BODIES = wire_fuzz.error_bodies()
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 2**41)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "x", "text", "tool_use", "STOP", "stop", "0"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["type", "text", "id", "index", "content", "parts", "x"]), inner, max_size=3),
    max_leaves=6,
)


class HypothesisChooser:
    """Every choice of the mutations is a hypothesis draw, so failures shrink."""

    def __init__(self, data: st.DataObject) -> None:
        self._data = data

    def index(self, n: int) -> int:
        return self._data.draw(st.integers(0, n - 1))

    def value(self) -> Any:
        return self._data.draw(JSON_VALUES)


def assert_library_outcome(outcome: wire_fuzz.Outcome) -> None:
    assert outcome.kind in ("ok", "malformed", "provider"), outcome.detail
    if outcome.kind == "malformed":
        error = outcome.exception
        assert isinstance(error, MalformedResponseError)
        assert error.provider and error.expected and "malformed response" in error.message
        assert not error.retryable
        assert len(error.excerpt) <= 120


@pytest.mark.parametrize("wire", list(WIRES))
@FUZZ
@given(data=st.data())
def test_parse_response_of_a_mutated_body(wire: str, data: st.DataObject) -> None:
    """parse_response of a recorded body, mutated: a well-typed response or MalformedResponseError."""
    spec = WIRES[wire]
    choose = HypothesisChooser(data)
    body = wire_fuzz.mutate_json(spec.bodies[choose.index(len(spec.bodies))], choose)
    assert_library_outcome(wire_fuzz.outcome_of(lambda: spec.format.parse_response(body)))


@pytest.mark.parametrize("wire", list(WIRES))
@FUZZ
@given(data=st.data())
def test_stream_decoder_of_mutated_events(wire: str, data: st.DataObject) -> None:
    """A recorded stream with events mutated, dropped, repeated, swapped, cut or garbled:
    the decoder gives a well-typed response or a documented ProviderError."""
    spec = WIRES[wire]
    choose = HypothesisChooser(data)
    events = wire_fuzz.mutate_events(spec.streams[choose.index(len(spec.streams))], choose)
    assert_library_outcome(wire_fuzz.outcome_of(lambda: wire_fuzz.decode(spec.format, events)))


@pytest.mark.parametrize("wire", list(WIRES))
@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_stream_decoder_of_malformed_sse_bytes(wire: str, data: st.DataObject) -> None:
    """Malformed SSE bytes, split by httpx-sse as the HTTP layer does: never a foreign exception."""
    spec = WIRES[wire]
    choose = HypothesisChooser(data)
    raw = wire_fuzz.mutate_bytes(spec.stream_bytes[choose.index(len(spec.stream_bytes))], choose)
    events = wire_fuzz.bytes_to_events(raw)
    assert_library_outcome(wire_fuzz.outcome_of(lambda: wire_fuzz.decode(spec.format, events)))


@pytest.mark.parametrize("wire", list(WIRES))
@FUZZ
@given(data=st.data(), status=st.sampled_from([429, 500, 503, 529]))
def test_a_malformed_error_body_keeps_its_status_class(wire: str, status: int, data: st.DataObject) -> None:
    """A 429/5xx whose error body is mutated is still the status's class, and a 5xx is still retryable."""
    spec = WIRES[wire]
    choose = HypothesisChooser(data)
    body = json.dumps(wire_fuzz.mutate_json(ERROR_BODIES[choose.index(len(ERROR_BODIES))], choose))
    error, _ = status_error(Endpoint(wire, spec.format, "http://provider.test"), status, {}, body)
    expected = {429: RateLimitError, 500: ServerError, 503: OverloadedError, 529: OverloadedError}[status]
    assert isinstance(error, APIStatusError) and type(error) is expected and error.status_code == status
    if status != 429:
        assert error.retryable


@pytest.mark.parametrize(
    "violations",
    [[1, "two"], "not a list", 7, [None], [["quotaId", "PerDay"]]],
    ids=["scalars", "string", "number", "null", "nested-list"],
)
def test_gemini_quota_failure_with_violations_that_are_not_objects_is_retryable(violations: Any) -> None:
    """A Gemini 429 QuotaFailure whose violations are not objects: a retryable RateLimitError
    that keeps its RetryInfo delay, not an AttributeError."""
    body = json.loads(json.dumps(wire_fuzz.GEMINI_QUOTA_429))
    body["error"]["details"][0]["violations"] = violations
    endpoint = Endpoint("gemini", WIRES["gemini"].format, "http://provider.test")
    error, delay = status_error(endpoint, 429, {}, json.dumps(body))
    assert type(error) is RateLimitError and error.retryable
    assert delay == 1.0


@pytest.mark.parametrize("delay", ["nans", "infs", "-infs"])
def test_gemini_retry_info_that_is_not_a_finite_number_is_ignored(delay: str) -> None:
    """RetryInfo.retryDelay "nans" must not become a NaN wait (a NaN compares false to every limit)."""
    body = {"error": {"code": 503, "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}}
    endpoint = Endpoint("gemini", WIRES["gemini"].format, "http://provider.test")
    _, wait = status_error(endpoint, 503, {}, json.dumps(body))
    assert wait is None


@pytest.mark.parametrize(
    ("wire", "body", "expected"),
    [
        ("anthropic", {"content": [{"type": "text", "text": 5}]}, "a string at content[0].text"),
        ("anthropic", {"content": "hello"}, "an array at content"),
        ("openai", {"choices": [[]]}, "an object at choices[0]"),
        ("openai", {"choices": [{"message": {"tool_calls": [7]}}]}, "an object at choices[0].message.tool_calls[0]"),
        ("gemini", {"candidates": [{"content": {"parts": [{"functionCall": {"args": [1]}}]}}]}, "an object at"),
        ("gemini", {"responseId": {"id": "r"}}, "a string at responseId"),
    ],
)
def test_the_error_says_what_was_expected_where(wire: str, body: dict[str, Any], expected: str) -> None:
    """The message names the provider, what was expected and where, and quotes what came."""
    with pytest.raises(MalformedResponseError) as info:
        WIRES[wire].format.parse_response(body)
    assert info.value.provider == wire
    assert expected in info.value.expected
    assert info.value.message.startswith(f"{wire}: malformed response: expected {expected}")


def test_the_excerpt_is_bounded() -> None:
    """A huge wrong-typed value is quoted in at most 120 characters."""
    with pytest.raises(MalformedResponseError) as info:
        WIRES["anthropic"].format.parse_response({"content": [{"type": "text", "text": ["x" * 10_000]}]})
    assert len(info.value.excerpt) <= 120 and info.value.excerpt.endswith("…")
    assert len(info.value.message) < 300
