"""Envelope: what every agent run returns.

An :class:`Envelope` carries the task, the result (``payload``), the run's
:class:`EnvelopeMetadata` and, for a failed run, an :class:`ErrorInfo`.  It is
a frozen value: derive changed copies with :func:`attrs.evolve`.

Cost and token rule
    ``metadata.cost_usd``, ``input_tokens`` and ``output_tokens`` are
    *inclusive* totals of everything that produced the envelope.  The
    ``nested_*`` fields are the part of those totals spent by nested runs
    (parallel branches, chain stages, sub-agents used as tools).  Summing the
    top-level ``cost_usd`` of a tree therefore never double counts.
    ``usage_reported`` is ``False`` when some model reply behind the envelope
    (its own or a nested run's) came without token usage: the totals then
    count that reply as 0 tokens and $0, so they are a lower bound.

Serialisation goes through exactly one cattrs converter, :data:`converter`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import attrs
import cattrs

from ._spend import Spend
from .errors import EnvelopeError

__all__ = [
    "Envelope",
    "EnvelopeMetadata",
    "ErrorInfo",
    "branch_labels",
    "converter",
    "fold_branches",
    "labelled_join",
]


@attrs.frozen
class ErrorInfo:
    """Why a run failed.

    ``type`` is the exception's class name (``"TimeoutError"``,
    ``"RateLimitError"``, ...), ``message`` the provider's or exception's own
    message, ``retryable`` whether trying again later may succeed.

    ``exception`` is the exception itself, for a run that failed in this
    process (``None`` for an envelope read back from JSON): test it with
    ``isinstance`` and read its attributes (``status_code``,
    ``retry_after``...).  It is not serialised, not compared (two
    ErrorInfos with the same type, message and retryable are equal) and not
    in the repr.  It keeps its traceback, and so the frames of the failed
    run, alive for as long as the envelope lives.
    """

    type: str
    message: str
    retryable: bool = False
    exception: Exception | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)


@attrs.frozen
class EnvelopeMetadata:
    """Accounting for one run.  See the module docstring for the cost rule."""

    run_id: str | None = None
    agent: str | None = None
    model: str | None = None
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    nested_input_tokens: int = 0
    nested_output_tokens: int = 0
    nested_cost_usd: float = 0.0
    #: ``False`` if any model reply counted here reported no usage (see the module docstring).
    usage_reported: bool = True
    #: For an ``Agent.race``: the label of the racer whose answer won (``None`` otherwise).
    winner: str | None = None

    @property
    def spend(self) -> Spend:
        """The accounting fields as one :class:`~lazybridge._spend.Spend` value."""
        return Spend(
            self.input_tokens,
            self.output_tokens,
            self.cost_usd,
            self.nested_input_tokens,
            self.nested_output_tokens,
            self.nested_cost_usd,
            self.usage_reported,
        )

    @classmethod
    def of_spend(
        cls,
        spend: Spend,
        *,
        run_id: str | None = None,
        agent: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        latency_ms: float = 0.0,
        winner: str | None = None,
    ) -> EnvelopeMetadata:
        """Metadata with ``spend``'s accounting and the given identity."""
        return cls(
            run_id, agent, model, provider, spend.input_tokens, spend.output_tokens, spend.cost_usd, latency_ms,
            spend.nested_input_tokens, spend.nested_output_tokens, spend.nested_cost_usd, spend.usage_reported,
            winner,
        )


def _is_branch_list(payload: object) -> bool:
    return isinstance(payload, list) and all(isinstance(p, Envelope) for p in payload) and bool(payload)


@attrs.frozen
class Envelope:
    """The result of a run.

    ``payload`` is whatever the run produced: a ``str`` for a plain model
    answer, a typed object for structured output, or -- for an
    ``Agent.parallel`` wrapper -- the ``list`` of branch envelopes in input
    order.  A wrapper is also a sequence of its branches: ``len(env)``,
    ``env[0]``, ``for branch in env``.
    """

    task: str | None = None
    context: str | None = None
    payload: Any = None
    metadata: EnvelopeMetadata = EnvelopeMetadata()
    error: ErrorInfo | None = None

    # -- constructors ---------------------------------------------------

    @classmethod
    def from_task(cls, task: str | Envelope, context: str | None = None) -> Envelope:
        """An input envelope for ``task``; an Envelope passes its ``text()`` on."""
        if isinstance(task, Envelope):
            if context is None and task.payload is None and task.error is None:
                return task  # already an input envelope, and envelopes are immutable
            # A result envelope hands on its text; an input envelope (no
            # payload yet) hands on its task unchanged.
            text = task.task if task.payload is None and task.error is None else task.text()
            return cls(task=text, context=context if context is not None else task.context)
        if not isinstance(task, str):
            raise TypeError(f"task must be a str or an Envelope, not {type(task).__name__}")
        return cls(task=task, context=context)

    @classmethod
    def error_envelope(
        cls,
        exc: BaseException,
        *,
        task: str | None = None,
        context: str | None = None,
        metadata: EnvelopeMetadata | None = None,
    ) -> Envelope:
        """An envelope for a run that failed with ``exc``.

        ``error.type`` is the exception's class name and ``error.retryable``
        its ``retryable`` attribute (``False`` when it has none);
        ``error.exception`` is ``exc`` itself -- unless it is not an
        ``Exception`` (a stray cancellation, say), which must never be raised
        again outside the scope it belongs to.
        """
        message = str(exc) or type(exc).__name__
        info = ErrorInfo(
            type(exc).__name__,
            message,
            bool(getattr(exc, "retryable", False)),
            exception=exc if isinstance(exc, Exception) else None,
        )
        return cls(task, context, None, metadata or EnvelopeMetadata(), info)

    # -- reading ----------------------------------------------------------

    @property
    def ok(self) -> bool:
        """``True`` unless the run (or, for a wrapper, any branch) failed."""
        return self.error is None

    def text(self) -> str:
        """The result as text.

        A string payload as is; a wrapper's labelled join
        (``"[a]\\n<a text>\\n\\n[b]\\n<b text>"``); a structured payload as JSON;
        for a failed run with no payload, ``""``.
        """
        payload = self.payload
        if payload is None:
            return ""
        if isinstance(payload, str):
            return payload
        if _is_branch_list(payload):
            return labelled_join(payload)
        return json.dumps(_to_jsonable(payload), ensure_ascii=False)

    def raise_for_error(self) -> Envelope:
        """Raise the run's error if it failed; else return self.

        The exception raised is the one the run failed with
        (``error.exception``): a :class:`~lazybridge.errors.RateLimitError`
        with its ``status_code`` and ``retry_after``, a ``TimeoutError``...,
        so ``except RateLimitError`` works.  An envelope that has no
        exception object -- one read back from JSON -- raises
        :class:`~lazybridge.errors.EnvelopeError` instead, whose
        ``error_type`` is the class name.

        The exception is raised with ``raise exc``: its traceback goes back
        to where the run failed, and its ``__cause__`` is the one it had.
        """
        if self.error is not None:
            if self.error.exception is not None:
                raise self.error.exception
            raise EnvelopeError(
                f"{self.error.type}: {self.error.message}",
                error_type=self.error.type,
                envelope=self,
            )
        return self

    # -- a wrapper is a sequence of its branches --------------------------

    def _branches(self) -> list[Envelope]:
        if _is_branch_list(self.payload):
            return self.payload  # type: ignore[no-any-return]
        raise _no_branches()

    def __iter__(self) -> Iterator[Envelope]:
        return iter(self._branches())

    def __len__(self) -> int:
        return len(self._branches())

    @overload
    def __getitem__(self, index: int) -> Envelope: ...
    @overload
    def __getitem__(self, index: slice) -> list[Envelope]: ...
    def __getitem__(self, index: int | slice) -> Envelope | list[Envelope]:
        if isinstance(index, slice):
            return self._branches()[index]
        # Constant time, so that ``env[i]`` in a loop over ten thousand
        # branches is not quadratic: look at the first branch and the one
        # asked for, not at every branch.
        payload = self.payload
        if isinstance(payload, list) and payload and isinstance(payload[0], Envelope):
            branch = payload[index]
            if isinstance(branch, Envelope):
                return branch
        raise _no_branches()

    def __bool__(self) -> bool:
        # Defined so that __len__ does not make a plain envelope falsy.
        return True

    # -- serialisation ----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return converter.unstructure(self)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Envelope:
        return converter.structure(data, cls)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Envelope:
        return cls.from_dict(json.loads(text))


def _no_branches() -> TypeError:
    return TypeError("this Envelope has no branches (only an Agent.parallel result has)")


def branch_labels(names: Sequence[str | None]) -> list[str]:
    """The labels of branches named ``names``: unique, in order.

    A name used once is its own label; a name used more than once (the same
    agent twice, for self-consistency sampling) is numbered in every place it
    appears -- ``a#1``, ``a#2`` -- so no two branches share a label.  A
    missing name is ``branch_<index>``.
    """
    given = [name or f"branch_{index}" for index, name in enumerate(names)]
    counts: dict[str, int] = {}
    for name in given:
        counts[name] = counts.get(name, 0) + 1
    if len(counts) == len(given):
        return given
    taken = set(given)
    seen: dict[str, int] = {}
    labels = []
    for name in given:
        if counts[name] == 1:
            labels.append(name)
            continue
        number = seen.get(name, 0)
        while True:
            number += 1
            label = f"{name}#{number}"
            if label not in taken:
                break
        seen[name] = number
        taken.add(label)
        labels.append(label)
    return labels


def labelled_join(branches: Sequence[Envelope]) -> str:
    """``"[label]\n<text>"`` blocks separated by blank lines; failures as ``(error) <message>``.

    Labels are the branches' agent names, numbered where a name repeats
    (see :func:`branch_labels`).
    """
    labels = branch_labels([branch.metadata.agent for branch in branches])
    blocks = []
    for label, branch in zip(labels, branches, strict=True):
        body = branch.text() if branch.error is None else f"(error) {branch.error.message}"
        blocks.append(f"[{label}]\n{body}")
    return "\n\n".join(blocks)


def fold_branches(branches: list[Envelope], task: Envelope) -> Envelope:
    """One envelope for a set of branches: the parallel result shape (see :class:`~lazybridge.ParallelAgent`).

    ``latency_ms`` is left for the caller (the wrapper's run measures it).
    """
    error = next((branch.error for branch in branches if branch.error is not None), None)
    metadata = EnvelopeMetadata.of_spend(Spend.total(branch.metadata for branch in branches).as_nested())
    return Envelope(task=task.task, context=task.context, payload=branches, metadata=metadata, error=error)


def _to_jsonable(value: Any) -> Any:
    """Best-effort JSON form of a structured payload (attrs, dataclass, pydantic, containers)."""
    if hasattr(value, "model_dump") and callable(value.model_dump):  # pydantic, duck-typed
        return value.model_dump(mode="json")
    return converter.unstructure(value)


# -- the one converter ------------------------------------------------------

converter = cattrs.Converter()
"""The converter every LazyBridge value is (un)structured with."""

_PAYLOAD_KIND = "payload_kind"


def _unstructure_envelope(env: Envelope) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task": env.task,
        "context": env.context,
        "metadata": converter.unstructure(env.metadata),
        "error": converter.unstructure(env.error) if env.error is not None else None,
    }
    payload = env.payload
    if isinstance(payload, list) and payload and all(isinstance(p, Envelope) for p in payload):
        out["payload"] = [_unstructure_envelope(p) for p in payload]
        out[_PAYLOAD_KIND] = "envelopes"
    else:
        out["payload"] = _to_jsonable(payload)
    return out


def _structure_envelope(data: Mapping[str, Any], _: type) -> Envelope:
    payload = data.get("payload")
    if data.get(_PAYLOAD_KIND) == "envelopes":
        payload = [_structure_envelope(p, Envelope) for p in payload or []]
    error = data.get("error")
    return Envelope(
        task=data.get("task"),
        context=data.get("context"),
        payload=payload,
        metadata=converter.structure(data.get("metadata") or {}, EnvelopeMetadata),
        error=converter.structure(error, ErrorInfo) if error is not None else None,
    )


def _unstructure_error(info: ErrorInfo) -> dict[str, Any]:
    # Not the exception: it is this process's object, and not data.
    return {"type": info.type, "message": info.message, "retryable": info.retryable}


def _structure_error(data: Mapping[str, Any], _: type) -> ErrorInfo:
    return ErrorInfo(data["type"], data["message"], bool(data.get("retryable", False)))


converter.register_unstructure_hook(ErrorInfo, _unstructure_error)
converter.register_structure_hook(ErrorInfo, _structure_error)
converter.register_unstructure_hook(Envelope, _unstructure_envelope)
converter.register_structure_hook(Envelope, _structure_envelope)
