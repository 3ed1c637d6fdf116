"""The registry of configured keys that redaction consults, and scrubbing errors built from provider text."""

from __future__ import annotations

import gc
import traceback

from lazybridge._secrets import Secret, configured_keys
from lazybridge.engines.llm import LLMEngine
from lazybridge.errors import ProviderError
from lazybridge.providers._errormap import scrubbed
from lazybridge.session.redact import REDACTED, redact_text, redact_value

from .test_http_policy import endpoint


def test_redaction_masks_a_configured_key_of_any_shape_and_forgets_it_with_its_engines() -> None:
    key = "plain-local-gateway-token-31415"
    assert redact_text(f"use {key}") == f"use {key}"  # no shape rule knows it
    engines = [LLMEngine("gpt-5.4-mini", api_key=key) for _ in range(50)]
    assert redact_text(f"use {key}") == f"use {REDACTED}"
    assert redact_value({"note": [f"k={key}"], key: 1}) == {"note": [f"k={REDACTED}"], REDACTED: 1}
    assert configured_keys().count(key) == 1  # fifty engines on one key: one search
    del engines
    gc.collect()
    assert key not in configured_keys()  # the registry holds no key alive
    assert redact_text(f"use {key}") == f"use {key}"


def test_a_key_stays_masked_while_any_engine_holds_it_whichever_engine_goes_first() -> None:
    """Two Secrets of one key are two holders: the first one collected must not take the key out of
    the registry while the second still holds it (a later engine on a key a dropped engine used)."""
    key = "team-gateway-registry-0123456789abcdef"
    first = Secret(key)
    second = Secret(key)
    del first
    gc.collect()
    assert key in configured_keys()
    assert redact_text(f"it said {key}") == f"it said {REDACTED}"
    del second
    gc.collect()
    assert key not in configured_keys()


def test_short_keys_are_not_masked_in_arbitrary_text() -> None:
    secret = Secret("test")  # a placeholder key for a local server: masking it would mask every "test"
    assert "test" not in configured_keys()
    assert redact_text("a test run") == "a test run"
    assert secret.scrub("key test") == "key ********"  # error messages are still scrubbed


def test_scrubbed_masks_the_key_in_an_error_its_attributes_and_its_causes() -> None:
    ep = endpoint()
    assert ep.api_key is not None
    key = ep.api_key.reveal()  # never written out here: a traceback shows this file's source lines
    try:
        try:
            raise KeyError(f"got {key}")
        except KeyError as exc:
            raise ProviderError(f"bad body: {key}", provider="openai") from exc
    except ProviderError as caught:
        error = caught
    error.excerpt = f"...{key}..."  # type: ignore[attr-defined]  # as a parser's error may carry
    assert scrubbed(ep, error) is error
    shown = "".join(traceback.format_exception(error)) + repr(error) + error.message + error.excerpt  # type: ignore[attr-defined]
    assert "bad body: ********" in shown and "got ********" in shown
    assert key not in shown
