"""Memory: the conversation an agent keeps from one call to the next.

::

    chat = Agent(engine=LLMEngine("claude-haiku-4-5"), memory=Memory(max_turns=20))
    chat("My name is Ada.")
    chat("What is my name?")            # the model sees the first exchange

A *turn* is one call of the agent: the user's task, every tool round the
model went through (each assistant message that called tools together with
the message carrying their results) and the final answer.  A memory is a
list of turns; the engine sends all of them, oldest first, before the new
task.  Only runs that succeed are recorded: a failed run leaves no trace.

Caps
    ``max_turns`` keeps the newest turns.  ``max_tokens`` keeps the history
    under an *approximate* token budget: one token per four characters of
    text, tool arguments (as JSON) and tool results, and a flat
    :data:`IMAGE_TOKENS` per image -- a deliberately crude estimate,
    independent of any tokenizer.  Trimming drops whole turns, oldest first.
    When the newest turn alone is over the budget its tool rounds are dropped
    (the task and the final answer stay); if it is still over, it is dropped
    too.  Either way a tool call is never separated from its result, so a
    trimmed history is always one the providers accept.

Concurrency
    Two runs of the same agent (or of two agents sharing a memory) may
    overlap.  Each run sees a consistent snapshot of the history taken when
    it starts, and records its own turn atomically when it ends, so the
    messages of concurrent runs never interleave inside a turn.  Turns are
    ordered by when their runs *finished*, and a run does not see turns
    recorded after it started.  A lock makes this hold across threads too
    (sync calls from several threads each run their own event loop).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence

from ._checks import check_whole
from .messages import ImagePart, Message, ReasoningPart, TextPart, ToolCall, ToolResult

__all__ = ["IMAGE_TOKENS", "Memory", "approx_tokens"]

#: What an image counts for in the ``max_tokens`` estimate.
IMAGE_TOKENS = 1000


def approx_tokens(messages: Iterable[Message]) -> int:
    """The estimate ``max_tokens`` is checked against: characters / 4, images :data:`IMAGE_TOKENS`."""
    chars = 0
    images = 0
    for message in messages:
        for part in message.parts:
            if isinstance(part, (TextPart, ReasoningPart)):
                chars += len(part.text)
            elif isinstance(part, ToolCall):
                chars += len(part.name) + len(
                    json.dumps(dict(part.arguments), ensure_ascii=False, default=str)
                )
            elif isinstance(part, ToolResult):
                chars += len(part.content)
            elif isinstance(part, ImagePart):
                images += 1
    return (chars + 3) // 4 + images * IMAGE_TOKENS


def _positive_int(value: int | None, argument: str) -> int | None:
    return check_whole(value, argument, optional=True)


class Memory:
    """A conversation history shared by the runs of an agent.

    Arguments:
        max_turns: keep at most this many turns (calls), the newest.
        max_tokens: keep the history under about this many tokens
            (characters / 4; see the module docstring).

    Pass it as ``Agent(memory=Memory())``; the agent's :class:`LLMEngine`
    reads it when a run starts and records the run's turn when it
    succeeds.  One memory may serve several agents, which then share one
    conversation.
    """

    def __init__(self, *, max_turns: int | None = None, max_tokens: int | None = None) -> None:
        self.max_turns = _positive_int(max_turns, "max_turns")
        self.max_tokens = _positive_int(max_tokens, "max_tokens")
        self._lock = threading.Lock()
        self._turns: list[tuple[tuple[Message, ...], int]] = []  # (messages, approx tokens)
        self._tokens = 0

    def __repr__(self) -> str:
        return f"<Memory turns={len(self._turns)} ~tokens={self._tokens}>"

    def __len__(self) -> int:
        """The number of turns kept."""
        return len(self._turns)

    @property
    def turns(self) -> tuple[tuple[Message, ...], ...]:
        """The turns kept, oldest first."""
        with self._lock:
            return tuple(messages for messages, _ in self._turns)

    @property
    def messages(self) -> tuple[Message, ...]:
        """A snapshot of the whole history, oldest first: what the next run will see."""
        with self._lock:
            return tuple(m for messages, _ in self._turns for m in messages)

    @property
    def tokens(self) -> int:
        """The approximate size of the history (see :func:`approx_tokens`)."""
        return self._tokens

    def add_turn(self, messages: Sequence[Message]) -> None:
        """Record one turn, atomically, then trim to the caps.

        The engine calls this at the end of a successful run; you may call
        it to seed a conversation (``[Message.user(q), Message.assistant(a)]``).
        The turn must start with a user message and must not end with tool
        calls that have no results.
        """
        turn = tuple(messages)
        if not turn or not all(isinstance(m, Message) for m in turn):
            raise TypeError("a turn is a non-empty sequence of Message objects")
        if turn[0].role != "user":
            raise ValueError(f"a turn starts with a user message, not a {turn[0].role!r} one")
        if turn[-1].role == "assistant" and turn[-1].tool_calls:
            raise ValueError("a turn must not end with tool calls that have no results")
        tokens = approx_tokens(turn)
        with self._lock:
            self._turns.append((turn, tokens))
            self._tokens += tokens
            self._trim()

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._turns.clear()
            self._tokens = 0

    def _trim(self) -> None:
        if self.max_turns is not None:
            while len(self._turns) > self.max_turns:
                self._drop_oldest()
        if self.max_tokens is None:
            return
        while self._tokens > self.max_tokens and len(self._turns) > 1:
            self._drop_oldest()
        if self._tokens > self.max_tokens and self._turns:
            compact = _without_tool_rounds(self._turns[0][0])
            tokens = approx_tokens(compact)
            self._turns[0] = (compact, tokens)
            self._tokens = tokens
            if tokens > self.max_tokens:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, tokens = self._turns.pop(0)
        self._tokens -= tokens


def _without_tool_rounds(turn: tuple[Message, ...]) -> tuple[Message, ...]:
    """The task and the final answer of ``turn``, without the tool rounds in between.

    Everything from the last assistant message on is kept (with the results
    of its calls, if it made any); everything between the task and it is a
    sequence of complete rounds, so nothing is left unpaired.
    """
    last = max((i for i, m in enumerate(turn) if m.role == "assistant"), default=None)
    if last is None or last <= 1:
        return turn
    return (turn[0], *turn[last:])
