"""Memory: turns kept whole, caps by turns and by approximate tokens, thread-safe appends."""

from __future__ import annotations

import threading

import pytest

from lazybridge import ConfigurationError, Memory
from lazybridge.memory import IMAGE_TOKENS, approx_tokens
from lazybridge.messages import ImagePart, Message, TextPart, ToolCall, ToolResult


def exchange(task: str, answer: str) -> list[Message]:
    return [Message.user(task), Message.assistant(answer)]


def tool_turn(task: str, result: str, answer: str) -> list[Message]:
    return [
        Message.user(task),
        Message("assistant", (ToolCall("c1", "lookup", {"q": task}),)),
        Message("tool", (ToolResult("c1", "lookup", result),)),
        Message.assistant(answer),
    ]


def unpaired(messages: tuple[Message, ...]) -> list[str]:
    """Call ids without a result in the next message, and results without a call."""
    problems = []
    for index, message in enumerate(messages):
        calls = {c.id for c in message.tool_calls}
        if calls:
            following = messages[index + 1] if index + 1 < len(messages) else None
            answered = (
                {p.call_id for p in following.parts if isinstance(p, ToolResult)} if following else set()
            )
            problems += sorted(calls - answered)
        if message.role == "tool":
            previous = messages[index - 1] if index else None
            asked = {c.id for c in previous.tool_calls} if previous else set()
            problems += sorted({p.call_id for p in message.parts if isinstance(p, ToolResult)} - asked)
    return problems


def test_turns_are_kept_in_order_and_whole() -> None:
    """messages is the turns flattened, oldest first."""
    memory = Memory()
    memory.add_turn(exchange("a", "A"))
    memory.add_turn(tool_turn("b", "found", "B"))
    assert len(memory) == 2
    assert [m.role for m in memory.messages] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    assert memory.turns[1][0].text == "b"


def test_max_turns_drops_the_oldest() -> None:
    """With max_turns=2 only the two newest turns stay."""
    memory = Memory(max_turns=2)
    for n in range(5):
        memory.add_turn(exchange(f"q{n}", f"a{n}"))
    assert [t[0].text for t in memory.turns] == ["q3", "q4"]


def test_max_tokens_drops_whole_turns_and_never_splits_a_call_from_its_result() -> None:
    """Token trimming removes whole turns, so every tool call keeps its result."""
    memory = Memory(max_tokens=60)
    for n in range(6):
        memory.add_turn(tool_turn(f"question {n}", "x" * 40, f"answer {n}"))
        assert memory.tokens <= 60
        assert unpaired(memory.messages) == []
    assert memory.turns[-1][0].text == "question 5"
    assert memory.tokens == approx_tokens(memory.messages)


def test_a_turn_over_the_budget_loses_its_tool_rounds_then_itself() -> None:
    """The newest turn alone over budget keeps task and answer; still over, it goes."""
    memory = Memory(max_tokens=20)
    memory.add_turn(tool_turn("short task", "y" * 400, "short answer"))
    assert [m.role for m in memory.messages] == ["user", "assistant"]
    assert [m.text for m in memory.messages] == ["short task", "short answer"]
    memory.add_turn(exchange("z" * 200, "ok"))
    assert len(memory) == 0 and memory.tokens == 0


def test_approx_tokens_is_chars_over_four() -> None:
    """Text, tool arguments (JSON) and results count at four characters a token; images flat."""
    assert approx_tokens([Message.user("x" * 8)]) == 2
    assert (
        approx_tokens([Message("assistant", (ToolCall("i", "ab", {"k": 1}),))])
        == (2 + len('{"k": 1}') + 3) // 4
    )
    assert approx_tokens([Message("user", (TextPart("abcd"), ImagePart(data="...")))]) == 1 + IMAGE_TOKENS


def test_add_turn_checks_its_input() -> None:
    """A turn starts with the user and does not end with unanswered calls."""
    memory = Memory()
    with pytest.raises(ValueError, match="user message"):
        memory.add_turn([Message.assistant("hi")])
    with pytest.raises(ValueError, match="tool calls"):
        memory.add_turn([Message.user("q"), Message("assistant", (ToolCall("c", "f", {}),))])
    with pytest.raises(TypeError):
        memory.add_turn([])
    with pytest.raises(ConfigurationError, match="max_turns"):
        Memory(max_turns=0)
    with pytest.raises(ConfigurationError, match="max_tokens"):
        Memory(max_tokens=True)


def test_concurrent_appends_from_threads_keep_turns_whole() -> None:
    """Appends from many threads never interleave messages of different turns."""
    memory = Memory()

    def writer(n: int) -> None:
        for i in range(50):
            memory.add_turn(tool_turn(f"t{n}-{i}", "r", f"a{n}-{i}"))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(memory) == 400
    for turn in memory.turns:
        assert turn[-1].text == "a" + turn[0].text[1:]
    assert unpaired(memory.messages) == []


def test_clear() -> None:
    memory = Memory()
    memory.add_turn(exchange("q", "a"))
    memory.clear()
    assert len(memory) == 0 and memory.messages == () and memory.tokens == 0
