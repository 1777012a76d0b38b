"""The official `openai` client against a running server (SLMOPS_SERVE_URL, started by
tests/serve/openai-client.sh): models, plain and streamed chat and completions, usage,
stop strings, and the errors the client raises for 400 and 404."""
import os

import openai
import pytest

URL = os.environ["SLMOPS_SERVE_URL"]
MODEL = os.environ.get("SLMOPS_SERVE_MODEL", "stories260K")
HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def client():
    return openai.OpenAI(base_url=URL, api_key="unused", max_retries=0)


def test_models(client):
    assert [m.id for m in client.models.list()] == [MODEL]


def test_chat(client):
    r = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=12,
                                       temperature=0)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + 12


def test_chat_stream_equals_plain(client):
    plain = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=16,
                                           temperature=0)
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=16, temperature=0, stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length" and not any(finishes[:-1])
    assert chunks[-1].usage.completion_tokens == 16


def test_stop_string(client):
    plain = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=24,
                                           temperature=0).choices[0].message.content
    stop = plain[8:11]
    r = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=24,
                                       temperature=0, stop=[stop])
    assert r.choices[0].message.content == plain[:plain.index(stop)]
    assert r.choices[0].finish_reason == "stop"


def test_seed_repeats(client):
    a, b = (client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=16,
                                           temperature=1.0, seed=7) for _ in range(2))
    assert a.choices[0].message.content == b.choices[0].message.content


def test_completion_and_stream(client):
    r = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=16,
                                  temperature=0)
    assert r.object == "text_completion" and r.usage.completion_tokens == 16
    s = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=16,
                                  temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in s) == r.choices[0].text


def test_unknown_model(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert e.value.body["code"] == "model_not_found"


@pytest.mark.parametrize("extra", [{"max_tokens": -1}, {"temperature": 9},
                                   {"stop": ["a", "b", "c", "d", "e"]}])
def test_bad_values(client, extra):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=HELLO, **extra)
    assert e.value.body["type"] == "invalid_request_error"
    assert e.value.body["param"] == next(iter(extra))
