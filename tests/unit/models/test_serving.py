"""``gtdsl serve``: a real HTTP client against a server on 127.0.0.1. Answers equal the Python
API (MiniLM's ``encode``, GPT-2's and T5's ``generate_text`` with the settings a request
means), 64 concurrent requests succeed and are batched, streaming sends server-sent events
that add up to the answer, and every bad request is a 4xx JSON error after which the server
still answers."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from gtdsl.serving import Limits, LocalServer as Server, completion_settings, create_app  # noqa: E402,E501
from tests.conftest import REPO  # noqa: E402


def _tiny(name: str, folder: Path, **kw) -> Path:
    spec = importlib.util.spec_from_file_location(
        "tiny_models", REPO / "docs" / "examples" / "models" / "tiny_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)(folder, **kw)


@pytest.fixture(scope="module")
def story(tmp_path_factory) -> Path:
    """docs/models.md's story model, as docs/serving.md shows it."""
    return _tiny("storyteller", tmp_path_factory.mktemp("story") / "storyteller")


@pytest.fixture(scope="module")
def minilm():
    app = create_app("all-MiniLM-L6-v2")
    with Server(app) as server:
        yield server


@pytest.fixture(scope="module")
def gpt2(story):
    with Server(create_app(str(story))) as server:
        yield server


def _post(server: Server, path: str, body) -> httpx.Response:
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(server.url + path, content=content, timeout=60,
                      headers={"content-type": "application/json"})


# ---------------------------------------------------------------------- answers


def test_embeddings_equal_encode(minilm) -> None:
    model = minilm.app.state.served.model
    texts = ["A man is eating food.", "Someone is playing a guitar, loudly and badly.", "x"]
    r = _post(minilm, "/v1/embeddings", {"input": texts, "model": "all-MiniLM-L6-v2"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list" and [d["index"] for d in body["data"]] == [0, 1, 2]
    got = torch.tensor([d["embedding"] for d in body["data"]])
    torch.testing.assert_close(got, model.encode(texts), rtol=0, atol=1e-6)
    assert body["usage"]["prompt_tokens"] == sum(
        len(model.tokenizer.encode(t).ids) for t in texts) - 0  # [CLS] .. [SEP] counted
    one = _post(minilm, "/v1/embeddings", {"input": texts[0], "encoding_format": "base64"})
    raw = base64.b64decode(one.json()["data"][0]["embedding"])
    vec = torch.frombuffer(bytearray(raw), dtype=torch.float32)
    torch.testing.assert_close(vec, model.encode(texts[:1])[0], rtol=0, atol=1e-6)
    assert httpx.get(minilm.url + "/health").json() == {
        "status": "ok", "model": "all-MiniLM-L6-v2", "object": "embeddings"}


def _python_answer(served, prompt: str, max_tokens: int, **settings) -> list[str]:
    """What the Python API answers, as the completion's text (after the prompt's text)."""
    model = served.model
    texts = model.generate_texts(prompt, max_tokens, **settings)
    if served.kind != "gpt2":
        return texts
    shown = model.tokenizer().decode(model.tokenizer().encode(prompt).ids)
    assert all(t.startswith(shown) for t in texts)
    return [t[len(shown):] for t in texts]


def test_completions_equal_generate(gpt2) -> None:
    served = gpt2.app.state.served
    prompt = "once upon a time the"
    r = _post(gpt2, "/v1/completions", {"prompt": prompt, "max_tokens": 12,
                                        "temperature": 0})
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert choice["text"] == _python_answer(served, prompt, 12, do_sample=False)[0]
    assert choice["finish_reason"] in ("stop", "length")
    # sampling with a seed: the same draws as the Python API with that generator
    body = {"prompt": prompt, "max_tokens": 10, "temperature": 0.8, "top_p": 0.9,
            "seed": 7, "n": 3}
    r = _post(gpt2, "/v1/completions", body)
    want = _python_answer(served, prompt, 10, num_return_sequences=3,
                          **completion_settings(0.8, 0.9, 7))
    assert [c["text"] for c in r.json()["choices"]] == want
    assert len(set(want)) > 1  # the answers were sampled
    # a stream: the pieces add up to the answer, then a finish reason and [DONE]
    with httpx.stream("POST", gpt2.url + "/v1/completions", timeout=60, json={
            "prompt": prompt, "max_tokens": 10, "temperature": 0.8, "top_p": 0.9,
            "seed": 7, "stream": True}) as s:
        assert s.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in s.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e)["choices"][0] for e in events[:-1]]
    assert "".join(c["text"] for c in chunks) == _python_answer(
        served, prompt, 10, **completion_settings(0.8, 0.9, 7))[0]
    assert chunks[-1]["finish_reason"] in ("stop", "length") and len(chunks) > 2


def test_t5_completions_equal_generate(tmp_path: Path) -> None:
    folder = _tiny("translator", tmp_path / "translator", steps=40)
    with Server(create_app(str(folder))) as server:
        served = server.app.state.served
        for prompt in ("translate English to German: the house is small",
                       "translate English to German: a cat"):
            r = _post(server, "/v1/completions", {"prompt": prompt, "max_tokens": 8,
                                                  "temperature": 0})
            assert r.json()["choices"][0]["text"] == _python_answer(
                served, prompt, 8, do_sample=False)[0]


# ---------------------------------------------------------------------- concurrency


async def _many(url: str, bodies: list) -> tuple[list, float, list[float]]:
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64)) as c:
        async def one(body):
            start = time.perf_counter()
            r = await c.post(url, json=body)
            return r, time.perf_counter() - start

        start = time.perf_counter()
        done = await asyncio.gather(*(one(b) for b in bodies))
        return [r for r, _ in done], time.perf_counter() - start, [t for _, t in done]


def test_64_concurrent_embedding_requests_are_batched(minilm) -> None:
    model = minilm.app.state.served.model
    texts = [f"sentence number {i} about {'cats' if i % 2 else 'the weather'}"
             for i in range(64)]
    batcher = minilm.app.state.batchers["embeddings"]
    before = batcher.calls
    responses, wall, latencies = asyncio.run(
        _many(minilm.url + "/v1/embeddings", [{"input": t} for t in texts]))
    assert all(r.status_code == 200 for r in responses)
    got = torch.tensor([r.json()["data"][0]["embedding"] for r in responses])
    torch.testing.assert_close(got, model.encode(texts), rtol=0, atol=1e-5)
    assert batcher.calls - before < 64  # requests shared model calls
    print(f"\n64 embedding requests: {wall:.2f} s wall, {64 / wall:.1f} req/s, latency "
          f"p50 {sorted(latencies)[32] * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms, "
          f"{batcher.calls - before} model calls")


def test_64_concurrent_completion_requests(gpt2) -> None:
    served = gpt2.app.state.served
    prompts = [f"the {w} and the" for w in ("sun", "moon", "star", "sea") * 16]
    batcher = gpt2.app.state.batchers["completions"]
    before = batcher.calls
    responses, wall, latencies = asyncio.run(_many(gpt2.url + "/v1/completions", [
        {"prompt": p, "max_tokens": 8, "temperature": 0} for p in prompts]))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses][:2]
    want = {p: _python_answer(served, p, 8, do_sample=False)[0] for p in set(prompts)}
    assert [r.json()["choices"][0]["text"] for r in responses] == [want[p] for p in prompts]
    assert batcher.calls - before < 64
    print(f"\n64 completion requests (8 tokens): {wall:.2f} s wall, {64 / wall:.1f} req/s, "
          f"latency p50 {sorted(latencies)[32] * 1000:.0f} ms, max "
          f"{max(latencies) * 1000:.0f} ms, {batcher.calls - before} model calls")


def test_a_full_queue_answers_503_and_the_server_goes_on(story) -> None:
    limits = Limits(max_queue=2, max_batch=1, max_wait_ms=0)
    with Server(create_app(str(story), limits)) as server:
        responses, _, _ = asyncio.run(_many(server.url + "/v1/completions", [
            {"prompt": "the sun and the", "max_tokens": 30, "temperature": 0}] * 24))
        codes = sorted({r.status_code for r in responses})
        assert codes == [200, 503], codes
        busy = next(r for r in responses if r.status_code == 503).json()
        assert busy["error"]["code"] == "server_busy"
        assert httpx.get(server.url + "/health").status_code == 200


# ---------------------------------------------------------------------- bad requests


BAD = [
    ("/v1/completions", b"{\"prompt\": ", 400, "not valid JSON"),
    ("/v1/completions", b"\xff\xfe", 400, "not valid JSON"),
    ("/v1/completions", b"[1, 2]", 400, "JSON object"),
    ("/v1/completions", b"[" * 100000 + b"]" * 100000, 400, "not valid JSON"),
    ("/v1/completions", {}, 400, "`prompt` is required"),
    ("/v1/completions", {"prompt": 3}, 400, "string or a list of strings"),
    ("/v1/completions", {"prompt": [[1, 2]]}, 400, "token arrays"),
    ("/v1/completions", {"prompt": []}, 400, "empty list"),
    ("/v1/completions", {"prompt": ""}, 400, "empty after tokenization"),
    ("/v1/completions", {"prompt": "a", "max_tokens": "5"}, 400, "`max_tokens` must be"),
    ("/v1/completions", {"prompt": "a", "max_tokens": 0}, 400, "from 1"),
    ("/v1/completions", {"prompt": "a", "max_tokens": 10 ** 30}, 400, "from 1"),
    ("/v1/completions", {"prompt": "a", "max_tokens": True}, 400, "an integer"),
    ("/v1/completions", {"prompt": "a", "temperature": -1}, 400, "temperature"),
    ("/v1/completions", {"prompt": "a", "temperature": "hot"}, 400, "a number"),
    ("/v1/completions", {"prompt": "a", "top_p": 0}, 400, "top_p"),
    ("/v1/completions", {"prompt": "a", "n": 0}, 400, "`n` must be"),
    ("/v1/completions", {"prompt": "a", "n": 2, "stream": True}, 400, "one answer"),
    ("/v1/completions", {"prompt": "a", "stream": "yes"}, 400, "true or false"),
    ("/v1/completions", {"prompt": "a", "seed": -1}, 400, "`seed`"),
    ("/v1/completions", {"prompt": "a", "stop": ["\n"]}, 400, "not supported"),
    ("/v1/completions", {"prompt": "a", "bogus": 1}, 400, "unrecognized request argument"),
    ("/v1/completions", {"prompt": "a", "presence_penalty": False}, 400, "not supported"),
    ("/v1/completions", {"prompt": "a", "best_of": 1.0}, 400, "not supported"),
    ("/v1/completions", {"prompt": "a \ud800 b"}, 400, "lone surrogate"),
    ("/v1/completions", {"prompt": ["a"] * 33}, 400, "at most 32"),
    ("/v1/completions", {"prompt": "a", "model": "gpt-4"}, 404, "not served"),
    ("/v1/completions", {"prompt": "a " * 200, "max_tokens": 50}, 400, "positions"),
    ("/v1/completions", {"prompt": ["a"] * 1000}, 400, "at most"),
    ("/v1/completions", b"{\"prompt\": \"" + b"a" * 2_000_000 + b"\"}", 413, "bytes"),
    ("/v1/embeddings", {"input": "a"}, 404, "serves /v1/completions"),
    ("/nowhere", {}, 404, "no route"),
]


def test_bad_requests_are_4xx_json_and_the_server_goes_on(gpt2) -> None:
    for path, body, status, text in BAD:
        r = _post(gpt2, path, body)
        assert r.status_code == status, (path, str(body)[:60], r.status_code, r.text[:200])
        error = r.json()["error"]
        assert text in error["message"], (str(body)[:60], error)
    assert httpx.get(gpt2.url + "/v1/completions").status_code == 405
    assert httpx.get(gpt2.url + "/health").json()["status"] == "ok"
    r = _post(gpt2, "/v1/completions", {"prompt": "the sun", "max_tokens": 2,
                                        "temperature": 0})
    assert r.status_code == 200


def test_bad_embedding_requests(minilm) -> None:
    for body, text in [({"input": 5}, "string or a list"), ({"input": [1, 2]}, "token"),
                       ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
                       ({"input": "a", "dimensions": 8}, "not supported"),
                       ({"input": ["a"] * 300}, "at most 256"), ({"input": ["ok", "a \ud800"]}, "surrogate")]:
        r = _post(minilm, "/v1/embeddings", body)
        assert r.status_code == 400 and text in r.json()["error"]["message"], (body, r.text)
    assert _post(minilm, "/v1/completions", {"prompt": "a"}).status_code == 404


# ---------------------------------------------------------------------- the command


def test_serve_command_usage_errors(tmp_path: Path, capsys) -> None:
    from gtdsl.cli.main import main

    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert "GT0909" in capsys.readouterr().err
    assert main(["serve", "all-MiniLM-L6-v2", "--port", "70000"]) == 2
    assert main(["serve", "all-MiniLM-L6-v2", "--max-batch", "0"]) == 2


@pytest.mark.slow
def test_serve_command_serves(story) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "gtdsl.cli", "serve", str(story), "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                time.sleep(0.1)
        assert r.json() == {"status": "ok", "model": "storyteller", "object": "completions"}
        r = httpx.post(f"http://127.0.0.1:{port}/v1/completions", timeout=60,
                       json={"prompt": "the sun", "max_tokens": 3, "temperature": 0})
        assert r.status_code == 200 and r.json()["choices"][0]["text"]
    finally:
        proc.terminate()
        proc.wait(20)


def test_the_docs_requests_give_the_docs_answers(minilm, gpt2) -> None:
    """Each curl request of docs/serving.md, sent to the server it names, answers as shown
    (ids and times aside; the embeddings' first four numbers to 4 places)."""
    import re

    text = (REPO / "docs" / "serving.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n\$ curl -sN? localhost:8000(\S+) .*?-d '(.*?)'\n(.*?)```",
                        text, re.S)
    assert len(blocks) == 4
    for path, body, shown in blocks:
        server = minilm if path == "/v1/embeddings" else gpt2
        if json.loads(body).get("stream"):
            with httpx.stream("POST", server.url + path, content=body, timeout=60) as s:
                got = [line for line in s.iter_lines() if line.startswith("data: ")]
            want = [line for line in shown.splitlines() if line.startswith("data: ")]
            assert len(got) == len(want) and got[-1] == want[-1] == "data: [DONE]"
            texts = [re.search(r'"text": "(.*?)"', line).group(1) for line in want[:-1]]
            assert [json.loads(g[6:])["choices"][0]["text"] for g in got[:-1]] == texts
            continue
        r = _post(server, path, body)
        want = json.loads(re.sub(r", \.\.\.\]", "]", shown.strip()))
        got = r.json()
        if "data" in want:
            for g, w in zip(got["data"], want["data"]):
                assert [round(x, 4) for x in g["embedding"][:4]] == w["embedding"]
                g["embedding"] = w["embedding"]
        for key in ("id", "created"):
            got.pop(key, None), want.pop(key, None)
        assert got == want


def test_a_request_that_breaks_a_batched_call_fails_alone() -> None:
    """A model call that raises for one request's payload: the batch runs again one request
    at a time, so the others get their answers."""
    from concurrent.futures import ThreadPoolExecutor

    from gtdsl.serving import Batcher

    def run(key, payloads):
        if "bad" in payloads:
            raise RuntimeError("the model failed")
        return [p.upper() for p in payloads]

    async def main():
        b = Batcher(run, Limits(max_wait_ms=50), ThreadPoolExecutor(1))
        b.start()
        got = await asyncio.gather(*(b.submit("k", p, 1) for p in ["a", "bad", "c"]),
                                   return_exceptions=True)
        b.task.cancel()
        return got, b.calls

    got, calls = asyncio.run(main())
    assert got[0] == "A" and got[2] == "C" and isinstance(got[1], RuntimeError)
    assert calls == 4  # the batch, then each alone


def test_limits_seeds_and_settings_of_completions(tmp_path: Path) -> None:
    folder = _tiny("translator", tmp_path / "translator", steps=10)
    # a folder asking for beams: the server's completions still use one (OpenAI has none)
    config = json.loads((folder / "generation_config.json").read_text()) if (
        folder / "generation_config.json").is_file() else {}
    (folder / "generation_config.json").write_text(json.dumps({**config, "num_beams": 4}))
    with Server(create_app(str(folder), Limits(max_prompt_tokens=20))) as server:
        served = server.app.state.served
        r = _post(server, "/v1/completions", {"prompt": "house " * 30})
        assert r.status_code == 400 and "at most 20" in r.json()["error"]["message"]
        prompts = ["translate English to German: the house", "translate English to German: a"]
        body = {"prompt": prompts, "max_tokens": 6, "temperature": 1.2, "seed": 5}
        got = [c["text"] for c in _post(server, "/v1/completions", body).json()["choices"]]
        want = [_python_answer(served, p, 6, **completion_settings(1.2, 1, 5))[0]
                for p in prompts]
        assert got == want  # each prompt's draws are its own, as alone
        with httpx.stream("POST", server.url + "/v1/completions", timeout=60, json={
                "prompt": prompts[0], "max_tokens": 6, "temperature": 0, "stream": True}) as s:
            events = [line[6:] for line in s.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        assert "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1]) == \
            _python_answer(served, prompts[0], 6, **completion_settings(0, 1, None))[0]


def test_a_stream_stops_when_its_client_goes_and_reports_errors(story) -> None:
    app = create_app(str(story))
    served = app.state.served
    generate, outcomes = served.model.generate, []

    def watched(*args, **kwargs):
        try:
            out = generate(*args, **kwargs)
        except BaseException as e:
            outcomes.append(type(e).__name__)
            raise
        outcomes.append("finished")
        return out

    served.model.generate = watched
    with Server(app) as server:
        body = {"prompt": "the", "max_tokens": 60, "temperature": 1.0, "stream": True}
        with httpx.stream("POST", server.url + "/v1/completions", json=body, timeout=60) as s:
            next(line for line in s.iter_lines() if line.startswith("data: "))
        for _ in range(200):  # the slot is free once the generation has stopped
            if app.state.streams[0] == 0 and outcomes:
                break
            time.sleep(0.05)
        assert outcomes == ["Cancelled"] and app.state.streams[0] == 0

        def broken(*args, **kwargs):
            raise RuntimeError("the model failed")

        served.model.generate = broken
        with httpx.stream("POST", server.url + "/v1/completions", json=body, timeout=60) as s:
            events = [line[6:] for line in s.iter_lines() if line.startswith("data: ")]
        assert json.loads(events[-1])["error"]["code"] == "internal_error"
        served.model.generate = generate
        assert _post(server, "/v1/completions", {"prompt": "the", "max_tokens": 2}
                     ).status_code == 200
