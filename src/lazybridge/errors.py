"""LazyBridge's exceptions.

Exceptions raised at construction time and the errors whose class names become
``Envelope.error.type`` at run time form one small tree::

    LazyBridgeError
    ├── ConfigurationError          bad arguments, unknown model (raised at construction)
    │   └── PlanCompileError        an invalid Plan, naming the step (raised at construction)
    ├── EnvelopeError               raise_for_error() of an envelope without its exception
    ├── MaxTurnsExceeded            the tool loop ran out of turns
    ├── MaxIterationsExceeded       a Plan's routing cycle ran past max_iterations
    ├── StructuredOutputError       the model's answer never fitted ``output=``
    ├── RunCancelled                a run was cancelled from outside (in its finish event)
    ├── BranchCancelled             a branch stopped by fail_fast, quorum or a race (in its slot)
    ├── QuorumUnreachable           too many branches failed for Agent.parallel's quorum
    ├── NoWinner                    every racer of Agent.race failed or was rejected
    ├── BudgetExceededError         a Budget refused a model request (lazybridge.Budget)
    ├── ToolArgumentError           a model's tool arguments did not fit (lazybridge.tools)
    └── ProviderError               anything a provider call can fail with
        ├── APIConnectionError      the request never got an HTTP answer (retryable)
        │   └── APITimeoutError     ... because a deadline ran out (retryable)
        ├── StreamError             a 200 stream broke or carried an error event
        ├── MalformedResponseError  an answer of a shape the wire format does not know
        └── APIStatusError          the provider answered with an error status
            ├── BadRequestError         400, 413, 422
            ├── AuthenticationError     401
            ├── PermissionDeniedError   403
            ├── NotFoundError           404
            ├── RateLimitError          429 (retryable unless the quota is exhausted)
            ├── OverloadedError         529, 503 (retryable)
            └── ServerError             408, 409, other 5xx (retryable)

Whether an error may be retried follows from its class and status code
(``retryable``), never from its message.  Messages never contain API keys or
authorization headers.
"""

from __future__ import annotations

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BranchCancelled",
    "BudgetExceededError",
    "ConfigurationError",
    "EnvelopeError",
    "LazyBridgeError",
    "MalformedResponseError",
    "MaxIterationsExceeded",
    "MaxTurnsExceeded",
    "NoWinner",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "PlanCompileError",
    "ProviderError",
    "QuorumUnreachable",
    "RateLimitError",
    "RunCancelled",
    "ServerError",
    "StreamError",
    "StructuredOutputError",
]


class LazyBridgeError(Exception):
    """Base class of every exception LazyBridge raises."""

    retryable: bool = False


class ConfigurationError(LazyBridgeError, ValueError):
    """An argument is invalid; raised at construction, naming the argument."""


class PlanCompileError(ConfigurationError):
    """A :class:`~lazybridge.Plan` is invalid; the message names the offending step."""


class EnvelopeError(LazyBridgeError):
    """Raised by :meth:`Envelope.raise_for_error` for an error envelope that has no exception object.

    That is an envelope read back from JSON (or one of a stray cancellation):
    one that still holds its exception raises that exception instead.
    """

    def __init__(self, message: str, *, error_type: str, envelope: object) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.envelope = envelope


class MaxTurnsExceeded(LazyBridgeError):
    """The model kept calling tools past ``max_turns``."""


class MaxIterationsExceeded(LazyBridgeError):
    """A :class:`~lazybridge.Plan`'s routes sent a step past ``max_iterations`` runs."""


class StructuredOutputError(LazyBridgeError):
    """The model's answer did not validate against ``output=`` after all retries."""


class RunCancelled(LazyBridgeError):
    """A run was cancelled from outside before it finished.

    Never returned by ``run()`` (the cancellation propagates to the caller);
    it is the ``error_type`` of the ``agent_finish`` event that such a run
    still emits, with what it spent, before the cancellation goes on.
    """


class BudgetExceededError(LazyBridgeError):
    """A :class:`~lazybridge.Budget` refused a model request: it was spent, or the request could exceed it.

    The request was not sent; the run ends with this error envelope, which
    still reports what the run spent.  Also raised at a run's first request
    under a ``max_cost_usd`` cap when the model's price is unknown.
    """


class BranchCancelled(LazyBridgeError):
    """A branch was cancelled because its fan-out had its answer: the ``error`` in its slot.

    ``Agent.parallel(fail_fast=True)`` cancels the other branches when one
    fails, ``Agent.parallel(quorum=k)`` when ``k`` succeeded (or can no
    longer succeed), ``Agent.race`` when a racer won.  ``cause`` says why, in
    words (``"branch 'b' failed: RateLimitError: ..."``, ``"racer 'a' won"``);
    the message names it too.  A cancelled branch's slot still reports what
    it spent before it was stopped.
    """

    def __init__(self, message: str, *, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


class QuorumUnreachable(LazyBridgeError):
    """So many branches failed that ``Agent.parallel(quorum=k)`` can no longer reach ``k`` successes.

    The wrapper's error; its message says how many failed and which.
    """


class NoWinner(LazyBridgeError):
    """No racer of an ``Agent.race`` gave an answer that won: each failed or was refused by ``accept``.

    The race's error; its message lists every racer's outcome.
    """


class ProviderError(LazyBridgeError):
    """A model provider call failed.

    ``provider`` names the wire format, ``status_code`` the HTTP status (if
    there was an answer), ``retry_after`` the seconds the provider asked
    callers to wait (``retry-after-ms``, ``retry-after``, Gemini's
    ``RetryInfo``), if it named any.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable


class APIConnectionError(ProviderError):
    """No HTTP answer: connection refused, reset, DNS failure."""

    retryable = True


class APITimeoutError(APIConnectionError):
    """The HTTP request timed out (connect, read, or a stalled stream)."""


class StreamError(ProviderError):
    """A stream that started with 200 broke off or carried an error event."""


class MalformedResponseError(ProviderError):
    """The provider answered, but not in a shape LazyBridge can read.

    A body or stream event that is not JSON, JSON of the wrong shape (a list
    where an object belongs, a missing ``choices``), or a field of the wrong
    type.  ``expected`` says what was expected and where (``"an object at
    content[0]"``); ``excerpt`` is a short excerpt of what came instead (at
    most 120 characters, any echo of the API key masked).  ``status_code``
    is the HTTP status of the answer.

    Not retryable: the provider said something, and asking again is unlikely
    to change its shape.  A malformed *error* body (a 429 or 5xx whose JSON
    is not the documented envelope) is not this error: it keeps the class and
    ``retryable`` its status gives, with the body itself as the message.
    """

    def __init__(
        self,
        message: str,
        *,
        expected: str = "",
        excerpt: str = "",
        provider: str | None = None,
        status_code: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status_code=status_code, retryable=retryable)
        self.expected = expected
        self.excerpt = excerpt


class APIStatusError(ProviderError):
    """The provider answered with an error status."""


class BadRequestError(APIStatusError):
    """400 / 413 / 422: the request is malformed; retrying will not help."""


class AuthenticationError(APIStatusError):
    """401, or no API key configured."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this resource."""


class NotFoundError(APIStatusError):
    """404: unknown model or endpoint."""


class RateLimitError(APIStatusError):
    """429: too many requests (retryable) or quota exhausted (not retryable)."""

    retryable = True


class OverloadedError(APIStatusError):
    """529 / 503: the provider is overloaded."""

    retryable = True


class ServerError(APIStatusError):
    """5xx, 408, 409: a transient server-side failure."""

    retryable = True
