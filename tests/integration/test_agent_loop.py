"""The tool loop over real loopback HTTP: concurrent calls, tool errors, max_turns, tool_choice, events."""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import pytest

import lazybridge
from lazybridge import Agent, LLMEngine, Session, Tool, events
from lazybridge.testing import FakeProvider, Reply

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("close_pool")]

KEY = "sk-loop-test-0123456789"
MODELS = ["claude-haiku-4-5", "gpt-5.4-mini", "gemini-3-flash-preview", "deepseek-v4-flash"]


def engine(base_url: str, model: str = "claude-haiku-4-5", **kwargs: Any) -> LLMEngine:
    return LLMEngine(model, base_url=base_url, api_key=KEY, **kwargs)


def tool_messages(request_body: dict[str, Any]) -> list[Any]:
    """The tool results of a recorded request, whatever the wire format."""
    if "contents" in request_body:  # Gemini
        return [
            p["functionResponse"]
            for c in request_body["contents"]
            for p in c["parts"]
            if "functionResponse" in p
        ]
    messages = request_body["messages"]
    if any(m["role"] == "tool" for m in messages):  # OpenAI chat dialects
        return [m for m in messages if m["role"] == "tool"]
    return [  # Anthropic
        block
        for m in messages
        if isinstance(m["content"], list)
        for block in m["content"]
        if block["type"] == "tool_result"
    ]


def result_text(result: Any) -> str:
    if "response" in result:  # Gemini functionResponse
        return str(result["response"].get("result", result["response"].get("error")))
    return str(result["content"])


# -- the seed's weather agent ----------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
async def test_two_tool_calls_of_one_turn_run_concurrently(
    model: str, fake: FakeProvider, base_url: str
) -> None:
    """Both calls of a turn are in flight at once: each waits for the other to start."""
    started = 0
    both = anyio.Event()

    async def get_weather(city: str) -> str:
        """Current weather for a city."""
        nonlocal started
        started += 1
        if started == 2:
            both.set()
        with anyio.fail_after(5):  # a sequential loop would wait here forever
            await both.wait()
        return f"18°C in {city}"

    fake.push(
        Reply(tool_calls=(("get_weather", {"city": "Rome"}), ("get_weather", {"city": "Tokyo"}))),
        "Rome 18°C, Tokyo 18°C.",
    )
    weather = Agent(engine=engine(base_url, model), tools=[get_weather], name="weather")
    env = await weather.run("What's the weather in Rome and in Tokyo?")
    assert env.ok, env.error
    assert env.text() == "Rome 18°C, Tokyo 18°C."
    first, second = fake.requests
    assert "get_weather" in str(first.body["tools"])
    results = tool_messages(second.body)
    assert [result_text(r) for r in results] == ["18°C in Rome", "18°C in Tokyo"]  # call order


async def test_sync_tools_run_in_threads_concurrently(fake: FakeProvider, base_url: str) -> None:
    """Sync tools of one turn run in worker threads at the same time."""
    barrier = threading.Barrier(3, timeout=5)  # breaks (and the tool raises) unless all three overlap

    def lookup(key: str) -> str:
        """Look a key up."""
        barrier.wait()
        return key.upper()

    fake.push(Reply(tool_calls=tuple(("lookup", {"key": k}) for k in "abc")), "done")
    agent = Agent(engine=engine(base_url), tools=[lookup])
    env = await agent.run("look up a, b and c")
    assert env.ok, env.error
    assert [result_text(r) for r in tool_messages(fake.requests[1].body)] == ["A", "B", "C"]


# -- failures go back to the model ------------------------------------------------------


async def test_a_raising_tool_is_a_tool_error_and_the_loop_goes_on(fake: FakeProvider, base_url: str) -> None:
    """The exception's type and text reach the model with is_error; the run still answers."""

    def get_weather(city: str) -> str:
        """Weather."""
        raise ValueError(f"no station in {city}")

    fake.push(Reply.tool_call("get_weather", {"city": "Atlantis"}), "Sorry, no data for Atlantis.")
    session = Session()
    env = await Agent(engine=engine(base_url), tools=[get_weather], session=session).run("weather?")
    assert env.ok and env.text() == "Sorry, no data for Atlantis."
    [result] = tool_messages(fake.requests[1].body)
    assert result["is_error"] is True
    assert result["content"] == "ValueError: no station in Atlantis"
    [error] = [e for e in session.events if e.kind == events.TOOL_ERROR]
    assert error.data["name"] == "get_weather" and error.data["error_type"] == "ValueError"
    assert error.data["message"] == "no station in Atlantis"
    assert error.data["call_id"].startswith("toolu_")


async def test_tool_timeout_from_the_engine_and_from_the_tool(fake: FakeProvider, base_url: str) -> None:
    """LLMEngine(tool_timeout=) bounds every call; a Tool's own timeout wins over it."""

    async def slow(x: int) -> str:
        """Slow."""
        await anyio.sleep(0.3)
        return "slow done"

    async def hang(x: int) -> str:
        """Never returns."""
        await anyio.sleep_forever()
        raise AssertionError

    patient = Tool.from_function(slow, timeout=5.0)  # longer than the engine's: it wins
    fake.push(Reply(tool_calls=(("slow", {"x": 1}), ("hang", {"x": 2}))), "ok")
    agent = Agent(engine=engine(base_url, tool_timeout=0.05), tools=[patient, hang])
    with anyio.fail_after(5):
        env = await agent.run("go")
    assert env.ok, env.error
    slow_result, hang_result = tool_messages(fake.requests[1].body)
    assert slow_result["content"] == "slow done" and "is_error" not in slow_result
    assert hang_result["is_error"] is True
    assert hang_result["content"].startswith("TimeoutError: tool 'hang' did not finish within 0.05")

    fake.push(Reply.tool_call("slow", {"x": 1}), "ok")
    quick = Tool.from_function(slow, timeout=0.05)  # shorter than the engine's: it wins
    env = await Agent(engine=engine(base_url, tool_timeout=30), tools=[quick]).run("go")
    [result] = tool_messages(fake.requests[-1].body)
    assert result["is_error"] is True and "TimeoutError" in result["content"]


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gpt-5.4-mini", "gemini-3-flash-preview"])
async def test_invalid_arguments_are_corrected_on_the_next_turn(
    model: str, fake: FakeProvider, base_url: str
) -> None:
    """A ToolArgumentError goes back naming the field; the model's corrected call then runs."""
    calls: list[tuple[str, int]] = []

    def forecast(city: str, days: int) -> str:
        """A forecast."""
        calls.append((city, days))
        return f"{days} sunny days in {city}"

    fake.push(
        Reply.tool_call("forecast", {"city": "Rome", "days": "three"}),
        Reply.tool_call("forecast", {"city": "Rome", "days": 3}),
        "Three sunny days.",
    )
    env = await Agent(engine=engine(base_url, model), tools=[forecast]).run("forecast for Rome")
    assert env.ok and env.text() == "Three sunny days."
    assert calls == [("Rome", 3)]
    [error] = tool_messages(fake.requests[1].body)
    text = result_text(error)
    assert "ToolArgumentError" in text and "expected integer, got string @ $.days" in text
    assert [result_text(r) for r in tool_messages(fake.requests[2].body)][-1] == "3 sunny days in Rome"


async def test_unknown_tool_and_non_object_arguments(fake: FakeProvider, base_url: str) -> None:
    """A call to a tool that was not offered, or with arguments that are not JSON, is a tool error."""

    def ping() -> str:
        """Ping."""
        return "pong"

    raw = {
        "id": "c1",
        "object": "chat.completion",
        "model": "gpt-5.4-mini",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "pong", "arguments": "{}"}},
                        {
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "ping", "arguments": "{oops"},
                        },
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5},
    }
    import json

    fake.push(Reply(body=json.dumps(raw).encode()), "fine")
    env = await Agent(engine=engine(base_url, "gpt-5.4-mini"), tools=[ping]).run("go")
    assert env.ok
    unknown, garbled = tool_messages(fake.requests[1].body)
    assert unknown["content"] == "UnknownToolError: there is no tool named 'pong' (the tools are: ping)"
    assert "the arguments are not a JSON object: '{oops'" in garbled["content"]


# -- turns and tool choice -------------------------------------------------------------


async def test_max_turns_exceeded_is_an_error_envelope_that_keeps_the_cost(
    fake: FakeProvider, base_url: str
) -> None:
    """A model that never stops calling tools ends with MaxTurnsExceeded after max_turns calls."""
    runs = 0

    def again() -> str:
        """Again."""
        nonlocal runs
        runs += 1
        return "more"

    fake.respond = lambda request: Reply.tool_call("again")
    env = await Agent(engine=engine(base_url, max_turns=3), tools=[again]).run("loop")
    assert not env.ok and env.error is not None
    assert env.error.type == "MaxTurnsExceeded"
    assert "max_turns=3" in env.error.message
    assert len(fake.requests) == 3 and runs == 2  # the third call's tools are not run
    assert env.metadata.input_tokens == 3 * 12 and env.metadata.cost_usd > 0


@pytest.mark.parametrize(
    ("model", "choice", "first", "after"),
    [
        ("claude-haiku-4-5", "required", {"type": "any"}, {"type": "auto"}),
        ("claude-haiku-4-5", "get_time", {"type": "tool", "name": "get_time"}, {"type": "auto"}),
        ("claude-haiku-4-5", "auto", {"type": "auto"}, {"type": "auto"}),
        ("gpt-5.4-mini", "required", "required", "auto"),
        ("gpt-5.4-mini", "get_time", {"type": "function", "function": {"name": "get_time"}}, "auto"),
        ("deepseek-v4-flash", "none", "none", "none"),
        (
            "gemini-3-flash-preview",
            "get_time",
            {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}},
            {"functionCallingConfig": {"mode": "AUTO"}},
        ),
        (
            "gemini-3-flash-preview",
            "required",
            {"functionCallingConfig": {"mode": "ANY"}},
            {"functionCallingConfig": {"mode": "AUTO"}},
        ),
    ],
)
async def test_tool_choice_reaches_the_wire_then_turns_auto(
    model: str, choice: str, first: Any, after: Any, fake: FakeProvider, base_url: str
) -> None:
    """tool_choice shapes the first request; after a forced tool round the next turn is auto."""

    def get_time(zone: str) -> str:
        """The time in a zone."""
        return "12:00"

    fake.push(Reply.tool_call("get_time", {"zone": "UTC"}), "It is noon.")
    env = await Agent(engine=engine(base_url, model, tool_choice=choice), tools=[get_time]).run("time?")
    assert env.ok, env.error
    key = "toolConfig" if model.startswith("gemini") else "tool_choice"
    assert [r.body[key] for r in fake.requests] == [first, after]


def test_tool_choice_is_checked() -> None:
    """A tool_choice that is not a mode nor a name raises at construction."""
    with pytest.raises(lazybridge.ConfigurationError, match="tool_choice"):
        LLMEngine("claude-haiku-4-5", tool_choice="")
    with pytest.raises(lazybridge.ConfigurationError, match="max_turns"):
        LLMEngine("claude-haiku-4-5", max_turns=0)
    with pytest.raises(lazybridge.ConfigurationError, match="tool_timeout"):
        LLMEngine("claude-haiku-4-5", tool_timeout=0)


async def test_tool_choice_naming_a_missing_tool_fails_before_any_request(
    fake: FakeProvider, base_url: str
) -> None:
    """A named tool_choice must name one of the agent's tools: refused when the agent is built."""

    def a() -> str:
        """A."""
        return "a"

    with pytest.raises(lazybridge.ConfigurationError, match="tool_choice names 'b'"):
        Agent(engine=engine(base_url, tool_choice="b"), tools=[a])
    assert fake.requests == []


async def test_tool_calls_without_tools_end_the_run(fake: FakeProvider, base_url: str) -> None:
    """An agent with no tools takes a reply that calls one as its answer (nothing to run)."""
    fake.push(Reply(text="Here.", tool_calls=(("f", {}),)))
    env = await Agent(engine=engine(base_url)).run("x")
    assert env.ok and env.text() == "Here." and len(fake.requests) == 1


# -- events and the verbose trace ----------------------------------------------------------


async def test_events_and_trace_of_a_tool_turn(
    fake: FakeProvider, base_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every model call and tool call is an event; verbose prints the tool lines."""

    async def get_weather(city: str) -> str:
        """Weather."""
        return f"sunny in {city}"

    def broken(city: str) -> str:
        """Broken."""
        raise RuntimeError("down")

    fake.push(Reply(tool_calls=(("get_weather", {"city": "Rome"}), ("broken", {"city": "Oslo"}))), "Sunny.")
    session = Session()
    agent = Agent(
        engine=engine(base_url), tools=[get_weather, broken], name="weather", session=session, verbose=True
    )
    await agent.run("weather?")
    kinds = [e.kind for e in session.events]
    assert kinds[:2] == [events.AGENT_START, events.MODEL_REQUEST]
    assert kinds.count(events.MODEL_REQUEST) == kinds.count(events.MODEL_RESPONSE) == 2
    [call_rome, call_oslo] = [e.data for e in session.events if e.kind == events.TOOL_CALL]
    assert call_rome["name"] == "get_weather" and call_rome["arguments"] == {"city": "Rome"}
    assert call_rome["call_id"] != call_oslo["call_id"]
    [result] = [e.data for e in session.events if e.kind == events.TOOL_RESULT]
    assert result["call_id"] == call_rome["call_id"] and result["result"] == "sunny in Rome"
    assert result["latency_ms"] >= 0
    [error] = [e.data for e in session.events if e.kind == events.TOOL_ERROR]
    assert (error["name"], error["error_type"], error["message"]) == ("broken", "RuntimeError", "down")
    out = capsys.readouterr().out
    assert '[weather] tool: get_weather({"city": "Rome"})' in out
    assert "[weather] tool result: get_weather -> sunny in Rome" in out
    assert "[weather] tool error: broken -> RuntimeError: down" in out
    assert "[weather] assistant: Sunny." in out


# -- streaming -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gpt-5.4-mini", "gemini-3-flash-preview"])
async def test_stream_runs_the_tool_loop(model: str, fake: FakeProvider, base_url: str) -> None:
    """A streamed run yields the text of every turn, runs the tools in between, ends like run()."""

    def get_weather(city: str) -> str:
        """Weather."""
        return f"sunny in {city}"

    fake.push(
        Reply(text="Let me check.", tool_calls=(("get_weather", {"city": "Rome"}),)),
        "It is sunny in Rome today.",
    )
    agent = Agent(engine=engine(base_url, model), tools=[get_weather], name="w")
    async with agent.stream("weather in Rome?") as stream:
        deltas = [d async for d in stream]
    assert "".join(deltas) == "Let me check.It is sunny in Rome today."
    assert stream.envelope is not None and stream.envelope.ok
    assert stream.envelope.text() == "It is sunny in Rome today."
    assert stream.envelope.metadata.input_tokens == 24
    assert [r.stream for r in fake.requests] == [True, True]
    assert [result_text(r) for r in tool_messages(fake.requests[1].body)] == ["sunny in Rome"]


async def test_stream_max_turns_raises(fake: FakeProvider, base_url: str) -> None:
    """A streamed run that runs out of turns raises MaxTurnsExceeded from the iteration."""

    def again() -> str:
        """Again."""
        return "x"

    fake.respond = lambda request: Reply.tool_call("again")
    agent = Agent(engine=engine(base_url, max_turns=2), tools=[again])
    with pytest.raises(lazybridge.MaxTurnsExceeded):
        async with agent.stream("go") as stream:
            async for _ in stream:
                pass
    assert stream.envelope is not None and stream.envelope.error is not None
    assert stream.envelope.error.type == "MaxTurnsExceeded"


# -- cancellation and deadlines ---------------------------------------------------------------


async def test_cancelling_a_run_cancels_its_tool_calls_and_records_nothing(
    fake: FakeProvider, base_url: str
) -> None:
    """Cancelling the caller mid tool round cancels every running call; memory stays empty."""
    started = anyio.Event()
    cancelled: list[str] = []

    async def hang(name: str) -> str:
        """Hangs."""
        try:
            if name == "b":
                started.set()
            await anyio.sleep_forever()
        finally:
            cancelled.append(name)
        raise AssertionError

    fake.push(Reply(tool_calls=(("hang", {"name": "a"}), ("hang", {"name": "b"}))))
    memory = lazybridge.Memory()
    agent = Agent(engine=engine(base_url), tools=[hang], memory=memory)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(agent.run, "go")
            await started.wait()
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert sorted(cancelled) == ["a", "b"]
    assert len(memory) == 0 and len(fake.requests) == 1


async def test_the_agent_timeout_covers_the_tool_round(fake: FakeProvider, base_url: str) -> None:
    """Agent(timeout=) cancels hanging tools and returns a TimeoutError envelope; thread tokens come back."""
    from lazybridge.tools import default_thread_limiter

    def blocking(seconds: float) -> str:
        """Blocks a thread."""
        time.sleep(seconds)
        return "late"

    async def hang() -> str:
        """Hangs."""
        await anyio.sleep_forever()
        raise AssertionError

    fake.push(Reply(tool_calls=(("blocking", {"seconds": 0.2}), ("hang", {}))))
    agent = Agent(engine=engine(base_url), tools=[blocking, hang], timeout=0.1)
    env = await agent.run("go")
    assert env.error is not None and env.error.type == "TimeoutError"
    limiter = default_thread_limiter()
    borrowers = [object() for _ in range(int(limiter.total_tokens))]
    with anyio.fail_after(5):  # every token, the abandoned thread's too, comes back once it ends
        for borrower in borrowers:
            await limiter.acquire_on_behalf_of(borrower)
    for borrower in borrowers:
        limiter.release_on_behalf_of(borrower)


# -- the seed's multi-source search -------------------------------------------------------------


async def test_seed_search_pipeline_with_tools_and_branch_trace(
    fake: FakeProvider, base_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three search agents with plain-function tools in Agent.parallel, chained into a synthesiser."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", base_url)

    def search_anthropic_docs(query: str) -> str:
        """Search Anthropic's docs portal."""
        return f"[anthropic docs result for {query!r}]"

    def search_openai_docs(query: str) -> str:
        """Search OpenAI's platform docs."""
        return f"[openai docs result for {query!r}]"

    def search_google_docs(query: str) -> str:
        """Search Google AI docs."""
        return f"[google ai docs result for {query!r}]"

    def respond(request: Any) -> Reply | str:
        messages = request.body["messages"]
        results = [b["content"] for b in messages[-1]["content"] if b["type"] == "tool_result"]
        if results:
            return f"found {results[0]}"
        tools = request.body.get("tools")
        if tools:
            return Reply.tool_call(tools[0]["name"], {"query": "structured output"})
        return "Each provider does it differently [anthropic_search] [openai_search] [google_search]."

    fake.respond = respond
    anthropic_search = Agent(
        engine=LLMEngine("claude-haiku-4-5", system="Look up Anthropic-specific facts."),
        tools=[search_anthropic_docs],
        name="anthropic_search",
    )
    openai_search = Agent(
        engine=LLMEngine("claude-haiku-4-5", system="Look up OpenAI-specific facts."),
        tools=[search_openai_docs],
        name="openai_search",
    )
    google_search = Agent(
        engine=LLMEngine("claude-haiku-4-5", system="Look up Google/Gemini-specific facts."),
        tools=[search_google_docs],
        name="google_search",
    )
    fanout = Agent.parallel(anthropic_search, openai_search, google_search, verbose=True)
    synthesiser = Agent(
        engine=LLMEngine(
            "claude-opus-4-7", system="You synthesise multi-source research into one tight paragraph."
        ),
        name="synthesiser",
    )
    pipeline = Agent.chain(fanout, synthesiser)
    env = await pipeline.run("How does each provider implement structured output?")
    assert env.ok, env.error
    assert env.text().startswith("Each provider does it differently")
    [synth_request] = [r for r in fake.requests if r.model == "claude-opus-4-7"]
    assert (
        "[openai_search]\nfound [openai docs result for 'structured output']" in synth_request.last_user_text
    )
    assert env.metadata.cost_usd == pytest.approx(
        env.metadata.nested_cost_usd
    )  # the chain itself calls no model
    out = capsys.readouterr().out
    for name, tool in [
        ("anthropic_search", "search_anthropic_docs"),
        ("openai_search", "search_openai_docs"),
        ("google_search", "search_google_docs"),
    ]:
        assert f'[branch {name}] tool: {tool}({{"query": "structured output"}})' in out
        assert f"[branch {name}] tool result: {tool} -> [" in out
