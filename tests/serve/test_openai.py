"""The official `openai` client against a running server, checking OpenAI
compatibility: models, plain and streamed chat and completions, usage, stop strings,
n choices, logprobs, penalties, JSON output (json_object, json_schema), embeddings,
and the errors the client raises (400, 401, 404).

The server is named by the environment (tests/serve/openai-client.sh starts slmops,
tests/serve/openai-peer.sh llama.cpp's llama-server on the same GGUF):
  SLMOPS_SERVE_URL        the API's base URL (required)
  SLMOPS_SERVE_EMBED_URL  where /v1/embeddings is (default: the same)
  SLMOPS_SERVE_KEY        the API key the server wants (default: none asked)
  SLMOPS_SERVE_MODEL      the model's name (default stories260K)
  SLMOPS_SERVE_PEER       "llama-server" when it is the server: the few tests that
                          check what only slmops does are then expected to fail
                          (strict xfail, each with its reason)."""
import base64
import json
import math
import os
import struct

import jsonschema
import openai
import pytest

URL = os.environ["SLMOPS_SERVE_URL"]
EMBED_URL = os.environ.get("SLMOPS_SERVE_EMBED_URL", URL)
KEY = os.environ.get("SLMOPS_SERVE_KEY")
MODEL = os.environ.get("SLMOPS_SERVE_MODEL", "stories260K")
LLAMA = os.environ.get("SLMOPS_SERVE_PEER") == "llama-server"
HELLO = [{"role": "user", "content": "Hello there"}]


def not_on_llama_server(reason):
    return pytest.mark.xfail(LLAMA, reason="llama-server: " + reason, strict=True)


@pytest.fixture(scope="module")
def client():
    return openai.OpenAI(base_url=URL, api_key=KEY or "unused", max_retries=0)


@pytest.fixture(scope="module")
def embedder():
    return openai.OpenAI(base_url=EMBED_URL, api_key=KEY or "unused", max_retries=0)


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


@not_on_llama_server("answers any model name with its one model")
def test_unknown_model(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert e.value.body["code"] == "model_not_found"


@not_on_llama_server("takes max_tokens -1 (no limit), temperature 9 and five stop strings")
@pytest.mark.parametrize("extra", [{"max_tokens": -1}, {"temperature": 9},
                                   {"stop": ["a", "b", "c", "d", "e"]}])
def test_bad_values(client, extra):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=HELLO, **extra)
    assert e.value.body["type"] == "invalid_request_error"
    assert e.value.body["param"] == next(iter(extra))


def test_messages_not_an_array(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages="Hello there", max_tokens=2)
    assert e.value.status_code == 400


@pytest.mark.skipif(not KEY, reason="the server was started without an API key")
def test_wrong_api_key():
    bad = openai.OpenAI(base_url=URL, api_key=KEY + "x", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.models.list()
    assert e.value.status_code == 401


# ---- n choices ----

def test_n_choices(client):
    r = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=8, n=2,
                                       temperature=1.0, seed=11)
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.message.content and c.finish_reason in ("length", "stop") for c in r.choices)
    assert r.usage.completion_tokens <= 16 and r.usage.completion_tokens >= 2


def test_n_choices_stream(client):
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=6,
                                                 n=2, temperature=0, stream=True))
    texts, finish = {0: "", 1: ""}, {}
    for c in chunks:
        for ch in c.choices:
            texts[ch.index] += ch.delta.content or ""
            if ch.finish_reason:
                finish[ch.index] = ch.finish_reason
    assert set(finish) == {0, 1}
    plain = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=6,
                                           temperature=0).choices[0].message.content
    assert texts[0] == texts[1] == plain   # greedy: every choice is the same text


# ---- logprobs ----

def test_chat_logprobs(client):
    r = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=6,
                                       temperature=0, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens == 6
    for t in content:
        assert t.logprob <= 0 and len(t.top_logprobs) == 3
        assert t.top_logprobs[0].token == t.token            # greedy: the likeliest
        assert abs(t.top_logprobs[0].logprob - t.logprob) < 1e-4
        lps = [x.logprob for x in t.top_logprobs]
        assert lps == sorted(lps, reverse=True)
        assert sum(math.exp(x) for x in lps) <= 1.0001
        assert bytes(t.bytes).decode("utf-8", "replace") == t.token
    text = r.choices[0].message.content
    assert "".join(t.token for t in content).strip() == text.strip()


def test_chat_logprobs_stream(client):
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=5, temperature=0, logprobs=True,
        top_logprobs=1, stream=True))
    tokens = [t for c in chunks if c.choices and c.choices[0].logprobs
              for t in c.choices[0].logprobs.content]
    assert len(tokens) == 5 and all(len(t.top_logprobs) == 1 for t in tokens)


@not_on_llama_server("answers completions logprobs in the chat format (content), not "
                     "OpenAI's tokens / token_logprobs / top_logprobs / text_offset")
def test_completion_logprobs(client):
    r = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=5,
                                  temperature=0, logprobs=2)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 5
    assert "".join(lp.tokens) == r.choices[0].text
    assert lp.text_offset == sorted(lp.text_offset)
    assert all(len(t) == 2 and max(t.values()) <= 0 for t in lp.top_logprobs)


# ---- penalties are applied ----

@pytest.mark.parametrize("penalty", ["frequency_penalty", "presence_penalty"])
def test_penalties_change_the_text(client, penalty):
    def text(value):
        return client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=60,
                                         temperature=0, **{penalty: value}).choices[0].text
    plain, penalised = text(0), text(2)
    assert plain == text(0) and penalised != plain
    words = penalised.split()
    assert len(set(words)) / len(words) > len(set(plain.split())) / len(plain.split())


# ---- JSON output ----

def test_json_object(client):
    r = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=80,
                                       temperature=0, response_format={"type": "json_object"})
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(r.choices[0].message.content), dict)
    else:
        assert r.choices[0].message.content.lstrip().startswith("{")


PERSON = {"type": "object",
          "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                         "pet": {"enum": ["cat", "dog", "bird"]}},
          "required": ["name", "age", "pet"]}


@pytest.mark.parametrize("prompt", ["Hello there", "Tell me about Lily", "Once upon a time"])
def test_json_schema(client, prompt):
    r = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}], max_tokens=150,
        temperature=0, response_format={"type": "json_schema", "json_schema": {
            "name": "person", "schema": PERSON, "strict": True}})
    assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
    doc = json.loads(r.choices[0].message.content)
    jsonschema.validate(doc, PERSON)


@not_on_llama_server("turns 'pattern' into a grammar; slmops refuses keywords outside its "
                     "documented subset")
def test_json_schema_unsupported_keyword(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=5, response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "a+"}}})
    assert "pattern" in e.value.body["message"]


# ---- embeddings ----

def test_embeddings(embedder):
    texts = ["Once upon a time", "The cat sat on the mat", "Once upon a time"]
    r = embedder.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    vecs = [d.embedding for d in r.data]
    assert [d.index for d in r.data] == [0, 1, 2]
    assert len({len(v) for v in vecs}) == 1 and len(vecs[0]) > 1
    for v in vecs:
        assert abs(sum(x * x for x in v) - 1) < 1e-3             # L2-normalized
    assert max(abs(a - b) for a, b in zip(vecs[0], vecs[2])) < 1e-5
    assert max(abs(a - b) for a, b in zip(vecs[0], vecs[1])) > 1e-3
    assert r.usage.prompt_tokens > 0
    one = embedder.embeddings.create(model=MODEL, input=texts[1], encoding_format="float")
    assert max(abs(a - b) for a, b in zip(one.data[0].embedding, vecs[1])) < 1e-4


def test_embeddings_base64_equals_float(embedder):
    f = embedder.embeddings.create(model=MODEL, input="Lily and Tom", encoding_format="float")
    raw = embedder.with_raw_response.embeddings.create(model=MODEL, input="Lily and Tom",
                                                       encoding_format="base64")
    b64 = json.loads(raw.http_response.text)["data"][0]["embedding"]
    decoded = struct.unpack(f"<{len(f.data[0].embedding)}f", base64.b64decode(b64))
    assert max(abs(a - b) for a, b in zip(decoded, f.data[0].embedding)) < 1e-6
