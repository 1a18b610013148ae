"""``gtdsl serve``: a model folder over HTTP with OpenAI's API, on Starlette and uvicorn.

- ``GET /health``: ``{"status": "ok", "model": NAME, "object": "embeddings"|"completions"}``.
- ``GET /v1/models``: the one model served, as OpenAI lists models.
- ``POST /v1/embeddings`` (BERT and RoBERTa folders): ``{"input": str | [str], "model"?,
  "encoding_format"?: "float" | "base64"}`` -> ``{"object": "list", "data": [{"object":
  "embedding", "embedding": [...], "index": i}], "model", "usage"}``; the vectors are
  ``model.encode(texts)``'s (normalized mean pooling, as sentence-transformers).
- ``POST /v1/completions`` (GPT-2 and T5 folders): ``{"prompt": str | [str], "max_tokens"
  (16), "temperature" (1), "top_p" (1), "n" (1), "stream" (false), "seed"?, "model"?}``;
  ``temperature`` 0 is greedy decoding, else sampling with ``top_p`` (no top-k, as OpenAI);
  ``stream`` sends server-sent events (``data: {...}`` chunks, then ``data: [DONE]``).
  ``completion_settings`` gives the ``generate`` settings a request means, so the Python
  API gives the same tokens.

Concurrent requests are batched: a worker takes what is queued (up to ``max_batch`` texts or
prompts, waiting at most ``max_wait_ms`` for more) and runs it as one model call on one
thread; completions run together when their settings and prompt lengths agree (no padding,
so each answer is the one the request alone gets), seeded ones alone. The queue is bounded
(503 when full), request bodies are capped (413), and every bad request is a 4xx JSON error
``{"error": {"message", "type", "param", "code"}}``; nothing a client sends stops the server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gtdsl.diagnostics import Diagnostic, GtdslError


@dataclass(frozen=True)
class Limits:
    """What one server accepts: request body bytes, texts per embedding request, tokens per
    prompt (a T5 prompt's attention grows with the square of its length), new tokens,
    answers; and how it batches: texts or prompts per model call (also the most prompts one
    completion request takes), the wait for more, queued items."""

    max_request_bytes: int = 1_000_000
    max_inputs: int = 256
    max_prompt_tokens: int = 512
    max_tokens: int = 512
    max_n: int = 8
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 256


class RequestError(Exception):
    """A request the server refuses: an HTTP status and an OpenAI-style error."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param,
                          "code": self.code}}


def serve_error(message: str, help: str | None = None, path: str | None = None) -> GtdslError:
    return GtdslError([Diagnostic("GT0909", message, None, (), (), help, path=path)])


# ---------------------------------------------------------------------- the model


class Served:
    """A loaded folder and what it serves: ``embeddings`` (BERT, RoBERTa) or ``completions``
    (GPT-2, T5)."""

    def __init__(self, folder: str, name: str | None = None) -> None:
        from gtdsl.models.bert import resolve_model_dir
        from gtdsl.models.rules import model_type

        path = resolve_model_dir(folder)
        kind = model_type(path)
        if kind in ("bert", "roberta", "xlm-roberta"):
            from gtdsl.models.bert import Bert, Roberta

            self.model: Any = (Bert if kind == "bert" else Roberta)(path)
            self.task = "embeddings"
        elif kind in ("gpt2", "t5", "mt5", None):
            from gtdsl.models.gpt2 import GPT2
            from gtdsl.models.t5 import T5

            self.model = (T5 if kind in ("t5", "mt5") else GPT2)(path)
            self.task = "completions"
            self.tokenizer = self.model.tokenizer()
            self.ends = set(self.model.settings().get("eos_token_id") or [])
            self.positions = getattr(self.model, "sizes", {}).get("P") \
                if kind == "gpt2" or kind is None else None
        else:
            raise serve_error(f"`gtdsl serve` serves BERT, RoBERTa, GPT-2 and T5 folders; this "
                              f"config.json's model_type is {kind!r}",
                              help="give a folder saved from one of these models",
                              path=str(path / "config.json"))
        self.name = name or (folder if not Path(folder).is_dir() else path.resolve().name)
        self.kind = kind or "gpt2"

    # --------------------------------------------------------------- embeddings
    def embed(self, texts: list[str]) -> list[list[float]]:
        with torch.no_grad():
            return self.model.encode(texts).tolist()

    def count_tokens(self, texts: list[str]) -> int:
        tok = self.model._unpadded_tokenizer()
        return sum(len(e.ids) for e in tok.encode_batch(texts))

    # --------------------------------------------------------------- completions
    def prompt_ids(self, prompt: str) -> list[int]:
        ids: list[int] = self.tokenizer.encode(prompt).ids
        if not ids:
            raise RequestError(400, "`prompt` is empty after tokenization", "prompt")
        return ids

    def complete(self, prompts: list[list[int]], max_tokens: int, n: int,
                 settings: dict[str, Any], stream: Callable[[str], Any] | None = None,
                 cancelled: threading.Event | None = None
                 ) -> list[list[tuple[str, str, int]]]:
        """Each prompt's ``n`` answers as (text, finish reason, new tokens); all prompts are
        one length. ``stream`` gets the one answer's text as it becomes final; setting
        ``cancelled`` stops the generation at its next token (``Cancelled``)."""
        from gtdsl.models.search import TextStream

        ids = torch.tensor(prompts, dtype=torch.int64)
        settings = dict(settings)
        repeat = 1
        if n > 1 and settings.get("do_sample"):
            settings["num_return_sequences"] = n
        else:
            repeat = n  # greedy answers are one answer n times
        streamer = None
        if stream is not None:
            first = prompts[0]
            streamer = _NewTokens(TextStream(lambda row: self.text(first, row), stream),
                                  cancelled)
        with torch.no_grad():
            out = self.model.generate(ids, max_tokens, streamer=streamer, **settings)
        start = ids.shape[1] if self.kind == "gpt2" else 1  # T5's rows start with its start
        per = out.shape[0] // len(prompts)
        answers = []
        for i in range(len(prompts)):
            rows = []
            for row in out[i * per:(i + 1) * per].tolist():
                new = row[start:]
                cut = next((j for j, t in enumerate(new) if t in self.ends), None)
                reason = "length" if cut is None else "stop"
                kept = new if cut is None else new[:cut]
                rows.append((self.text(prompts[i], kept), reason,
                             len(kept) + (0 if cut is None else 1)))
            answers.append([r for r in rows for _ in range(repeat)])
        return answers


    def text(self, prompt: list[int], new: list[int]) -> str:
        """The text of the new tokens: for GPT-2, what decoding the prompt and them adds to
        the prompt's text (its leading space included, as the Python API's answer, which
        starts with the prompt, has it); for T5, the decoded answer."""
        decode = self.tokenizer.decode
        if self.kind != "gpt2":
            return str(decode(new))
        before, whole = decode(prompt), decode(prompt + new)
        return str(whole[len(before):] if whole.startswith(before) else decode(new))


class Cancelled(Exception):
    """A stream's client went away: its generation stops."""


class _NewTokens:
    """A streamer that drops the first ``put`` (the prompt, or T5's start token): the text
    sent is the completion's alone. Each token first checks ``cancelled``."""

    def __init__(self, inner: Any, cancelled: threading.Event | None = None) -> None:
        self.inner, self.started, self.cancelled = inner, False, cancelled

    def put(self, tokens: torch.Tensor) -> None:
        if self.cancelled is not None and self.cancelled.is_set():
            raise Cancelled()
        if not self.started:
            self.started = True
            return
        self.inner.put(tokens)

    def end(self) -> None:
        self.inner.end()


def completion_settings(temperature: float, top_p: float, seed: int | None
                        ) -> dict[str, Any]:
    """The ``generate`` settings of an OpenAI completion request: temperature 0 is greedy
    decoding; otherwise sampling with ``temperature`` and ``top_p``, top-k off (OpenAI has
    none), drawn from ``torch.Generator().manual_seed(seed)`` when a seed is given; one beam
    whatever the folder's generation settings say (OpenAI has no beams)."""
    if temperature == 0:
        return {"do_sample": False, "num_beams": 1}
    out: dict[str, Any] = {"do_sample": True, "temperature": float(temperature),
                           "top_p": float(top_p), "top_k": 0, "num_beams": 1}
    if seed is not None:
        out["generator"] = torch.Generator().manual_seed(seed)
    return out


# ---------------------------------------------------------------------- checking requests


def _field(body: dict[str, Any], name: str, kinds: tuple[type, ...], default: Any,
           what: str) -> Any:
    value = body.get(name, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        raise RequestError(400, f"`{name}` must be {what}, not {_shown(value)}", name)
    if isinstance(value, float) and not math.isfinite(value):
        raise RequestError(400, f"`{name}` must be a finite number", name)
    return value


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _texts(body: dict[str, Any], name: str, most: int) -> list[str]:
    if name not in body:
        raise RequestError(400, f"`{name}` is required", name)
    value = body[name]
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise RequestError(400, f"`{name}` must be a string or a list of strings (token "
                           "arrays are not taken)", name)
    if not texts:
        raise RequestError(400, f"`{name}` is an empty list", name)
    if len(texts) > most:
        raise RequestError(400, f"`{name}` has {len(texts)} items; at most {most} are taken "
                           "per request", name)
    for t in texts:
        try:
            t.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (`\ud800`): JSON, but no text
            raise RequestError(400, f"`{name}` holds a lone surrogate (\\ud800-\\udfff), "
                               "which is not text", name) from None
    return texts


def _known(body: dict[str, Any], allowed: set[str], defaults: dict[str, Any]) -> None:
    for key, value in body.items():
        if key in defaults:
            if not any(value is d or type(value) is type(d) and value == d
                       for d in defaults[key]):
                raise RequestError(400, f"`{key}` = {_shown(value)} is not supported by this "
                                   "server", key)
        elif key not in allowed:
            raise RequestError(400, f"unrecognized request argument supplied: {key}", key)


# ---------------------------------------------------------------------- batching


@dataclass
class _Item:
    key: Any
    payload: Any
    size: int
    future: asyncio.Future = field(repr=False)


class Batcher:
    """A bounded queue and one worker: items with the same key run as one model call."""

    def __init__(self, run: Callable[[Any, list[Any]], list[Any]], limits: Limits,
                 executor: ThreadPoolExecutor) -> None:
        self.run, self.limits, self.executor = run, limits, executor
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(limits.max_queue)
        self.pending: list[_Item] = []
        self.task: asyncio.Task | None = None
        self.calls = 0

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._work())

    async def submit(self, key: Any, payload: Any, size: int) -> Any:
        loop = asyncio.get_running_loop()
        item = _Item(key, payload, size, loop.create_future())
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            raise RequestError(503, "the server is busy: its queue is full; retry later",
                               code="server_busy") from None
        return await item.future

    async def _work(self) -> None:
        while True:
            first = self.pending.pop(0) if self.pending else await self.queue.get()
            batch, size = [first], first.size
            deadline = time.monotonic() + self.limits.max_wait_ms / 1000
            keep: list[_Item] = []
            for item in list(self.pending):  # what waited from before, same key first
                if item.key == first.key and size + item.size <= self.limits.max_batch:
                    batch.append(item)
                    size += item.size
                else:
                    keep.append(item)
            self.pending = keep
            while size < self.limits.max_batch:
                left = deadline - time.monotonic()
                try:
                    item = self.queue.get_nowait() if left <= 0 else \
                        await asyncio.wait_for(self.queue.get(), left)
                except (asyncio.QueueEmpty, asyncio.TimeoutError):
                    break
                if item.key == first.key and size + item.size <= self.limits.max_batch:
                    batch.append(item)
                    size += item.size
                else:
                    self.pending.append(item)
            live = [i for i in batch if not i.future.done()]
            if not live:
                continue
            await self._run(first.key, live, alone=len(live) == 1)

    async def _run(self, key: Any, items: list[_Item], alone: bool) -> None:
        """One model call for ``items``; when it fails and they were several, each runs
        alone, so a request that breaks the call fails only itself."""
        loop = asyncio.get_running_loop()
        self.calls += 1
        try:
            results = await loop.run_in_executor(self.executor, self.run, key,
                                                 [i.payload for i in items])
        except Exception as e:  # noqa: BLE001 - the requests get the error
            if not alone:
                for i in items:
                    await self._run(key, [i], alone=True)
                return
            for i in items:
                if not i.future.done():
                    i.future.set_exception(e)
            return
        for i, r in zip(items, results):
            if not i.future.done():
                i.future.set_result(r)


# ---------------------------------------------------------------------- the app


def create_app(folder: str, limits: Limits | None = None, name: str | None = None) -> Any:
    """The Starlette app serving ``folder`` (loaded now: a bad folder is a GtdslError)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    limits = limits or Limits()
    served = Served(folder, name)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gtdsl-model")
    state: dict[str, Batcher] = {}
    lock = threading.Lock()  # streams run outside the batcher: one model call at a time
    streams = [0]  # streams started and not finished

    def run_embeddings(_key: Any, payloads: list[list[str]]) -> list[Any]:
        texts = [t for p in payloads for t in p]
        with lock:
            vectors = served.embed(texts)
        out, i = [], 0
        for p in payloads:
            out.append(vectors[i:i + len(p)])
            i += len(p)
        return out

    def run_completions(key: Any, payloads: list[list[list[int]]]) -> list[Any]:
        max_tokens, n, temperature, top_p, seed = key[:5]
        prompts = [ids for p in payloads for ids in p]
        with lock:
            answers = served.complete(prompts, max_tokens, n,
                                      completion_settings(temperature, top_p, seed))
        out, i = [], 0
        for p in payloads:
            out.append(answers[i:i + len(p)])
            i += len(p)
        return out

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        state["embeddings"] = Batcher(run_embeddings, limits, executor)
        state["completions"] = Batcher(run_completions, limits, executor)
        for b in state.values():
            b.start()
        yield
        for b in state.values():
            if b.task is not None:
                b.task.cancel()
        executor.shutdown(wait=False, cancel_futures=True)

    async def read_json(request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limits.max_request_bytes:
            raise RequestError(413, f"the request body has {length} bytes; at most "
                               f"{limits.max_request_bytes} are taken", code="too_large")
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limits.max_request_bytes:
                raise RequestError(413, f"the request body is larger than "
                                   f"{limits.max_request_bytes} bytes", code="too_large")
            chunks.append(chunk)
        try:
            body = json.loads(b"".join(chunks))
        except (ValueError, RecursionError):
            raise RequestError(400, "the request body is not valid JSON",
                               code="invalid_json") from None
        if not isinstance(body, dict):
            raise RequestError(400, "the request body must be a JSON object",
                               code="invalid_json")
        model = body.get("model")
        if model is not None and model != served.name:
            raise RequestError(404, f"the model `{_shown(model)}` is not served here; this "
                               f"server serves `{served.name}`", "model", "model_not_found")
        return body

    def need(task: str) -> None:
        if served.task != task:
            raise RequestError(404, f"`{served.name}` is a {served.kind} model: it serves "
                               f"/v1/{served.task}, not /v1/{task}", code="wrong_endpoint")

    async def health(request: Request) -> Any:
        return JSONResponse({"status": "ok", "model": served.name, "object": served.task})

    async def models(request: Request) -> Any:
        return JSONResponse({"object": "list", "data": [
            {"id": served.name, "object": "model", "created": 0, "owned_by": "gtdsl"}]})

    async def embeddings(request: Request) -> Any:
        need("embeddings")
        body = await read_json(request)
        _known(body, {"input", "model", "encoding_format", "user"},
               {"dimensions": (None,)})
        texts = _texts(body, "input", limits.max_inputs)
        fmt = _field(body, "encoding_format", (str,), "float", "\"float\" or \"base64\"")
        if fmt not in ("float", "base64"):
            raise RequestError(400, "`encoding_format` must be \"float\" or \"base64\"",
                               "encoding_format")
        vectors = await state["embeddings"].submit("embed", texts, len(texts))
        data = []
        for i, v in enumerate(vectors):
            emb: Any = v if fmt == "float" else base64.b64encode(
                torch.tensor(v, dtype=torch.float32).numpy().tobytes()).decode()
            data.append({"object": "embedding", "embedding": emb, "index": i})
        tokens = served.count_tokens(texts)
        return JSONResponse({"object": "list", "data": data, "model": served.name,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def completions(request: Request) -> Any:
        need("completions")
        body = await read_json(request)
        _known(body, {"prompt", "model", "max_tokens", "temperature", "top_p", "n", "stream",
                      "seed", "user"},
               {"echo": (False, None), "logprobs": (None,), "best_of": (None, 1),
                "presence_penalty": (0, None), "frequency_penalty": (0, None),
                "logit_bias": (None, {}), "stop": (None,), "suffix": (None,),
                "stream_options": (None,)})
        prompts = _texts(body, "prompt", limits.max_batch)
        max_tokens = _field(body, "max_tokens", (int,), 16, "an integer")
        temperature = _field(body, "temperature", (int, float), 1, "a number")
        top_p = _field(body, "top_p", (int, float), 1, "a number")
        n = _field(body, "n", (int,), 1, "an integer")
        stream = _field(body, "stream", (bool,), False, "true or false")
        seed = _field(body, "seed", (int,), None, "an integer")
        if not 1 <= max_tokens <= limits.max_tokens:
            raise RequestError(400, f"`max_tokens` must be from 1 to {limits.max_tokens}",
                               "max_tokens")
        if not 0 <= temperature <= 2:
            raise RequestError(400, "`temperature` must be from 0 to 2", "temperature")
        if not 0 < top_p <= 1:
            raise RequestError(400, "`top_p` must be greater than 0 and at most 1", "top_p")
        if not 1 <= n <= limits.max_n:
            raise RequestError(400, f"`n` must be from 1 to {limits.max_n}", "n")
        if seed is not None and not 0 <= seed < 2 ** 63:
            raise RequestError(400, "`seed` must be from 0 to 2**63 - 1", "seed")
        if len(prompts) * n > limits.max_batch * limits.max_n:
            raise RequestError(400, "too many answers asked for in one request", "n")
        ids = [served.prompt_ids(p) for p in prompts]
        for p in ids:
            if len(p) > limits.max_prompt_tokens:
                raise RequestError(400, f"the prompt has {len(p)} tokens; at most "
                                   f"{limits.max_prompt_tokens} are taken", "prompt")
        if served.positions is not None:
            for p in ids:
                if len(p) + max_tokens > served.positions:
                    raise RequestError(400, f"the prompt ({len(p)} tokens) and `max_tokens` "
                                       f"({max_tokens}) exceed the model's "
                                       f"{served.positions} positions", "max_tokens")
        if stream:
            if len(prompts) != 1 or n != 1:
                raise RequestError(400, "`stream` sends one answer: one prompt and n = 1",
                                   "stream")
            if streams[0] >= limits.max_queue:  # streams wait for the model, as queued items
                raise RequestError(503, "the server is busy: too many streams wait; retry "
                                   "later", code="server_busy")
            return StreamingResponse(_stream(served, ids[0], max_tokens, temperature, top_p,
                                             seed, executor, lock, streams),
                                     media_type="text/event-stream")
        answers: list[list[tuple[str, str, int]]] = []
        by_length: dict[Any, list[int]] = {}
        for i, p in enumerate(ids):  # seeded prompts each alone: their draws are their own
            by_length.setdefault((len(p), i if seed is not None else None), []).append(i)
        results: dict[int, Any] = {}
        waits = []
        for (length, _), rows in by_length.items():  # one submission per prompt length
            unique = uuid.uuid4().hex if seed is not None else None  # seeded: alone
            key = (max_tokens, n, temperature, top_p, seed, length, unique)
            waits.append(state["completions"].submit(key, [ids[r] for r in rows],
                                                     len(rows) * n))
        for rows, got in zip(by_length.values(), await asyncio.gather(*waits)):
            for r, a in zip(rows, got):
                results[r] = a
        answers = [results[i] for i in range(len(ids))]
        choices = []
        completion_tokens = 0
        for i, per_prompt in enumerate(answers):
            for j, (text, reason, count) in enumerate(per_prompt):
                choices.append({"text": text, "index": i * n + j, "logprobs": None,
                                "finish_reason": reason})
                completion_tokens += count
        prompt_tokens = sum(len(p) for p in ids)
        return JSONResponse({
            "id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
            "created": int(time.time()), "model": served.name, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}})

    async def refused(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, RequestError)
        return JSONResponse(exc.body(), status_code=exc.status)

    async def http_error(request: Request, exc: Exception) -> Any:
        status = getattr(exc, "status_code", 500)
        message = {404: f"no route {request.url.path}", 405:
                   f"{request.method} is not allowed on {request.url.path}"}.get(
                       status, str(getattr(exc, "detail", "error")))
        return JSONResponse(RequestError(status, message, code=str(status)).body(),
                            status_code=status)

    async def model_error(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, GtdslError)
        d = exc.diagnostics[0]
        return JSONResponse(RequestError(400, d.message, code=d.code).body(), status_code=400)

    async def server_error(request: Request, exc: Exception) -> Any:
        return JSONResponse(RequestError(500, f"internal error: {type(exc).__name__}",
                                         code="internal_error").body(), status_code=500)

    routes = [Route("/health", health, methods=["GET"]),
              Route("/v1/models", models, methods=["GET"]),
              Route("/v1/embeddings", embeddings, methods=["POST"]),
              Route("/v1/completions", completions, methods=["POST"])]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        RequestError: refused, HTTPException: http_error, GtdslError: model_error,
        Exception: server_error})
    app.state.served = served
    app.state.batchers = state
    app.state.streams = streams
    return app


async def _stream(served: Served, ids: list[int], max_tokens: int, temperature: float,
                  top_p: float, seed: int | None, executor: ThreadPoolExecutor,
                  lock: threading.Lock, streams: list[int]) -> AsyncIterator[bytes]:
    """Server-sent events: one chunk per piece of text as it becomes final, a last chunk
    with the finish reason, then ``[DONE]``; an error as an error event. ``streams`` counts
    this stream until its generation ends: a client that goes away stops the generation at
    its next token, and its slot is free once the model is."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[str | None] = asyncio.Queue()
    cancelled = threading.Event()
    ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(text: str, reason: str | None) -> bytes:
        return ("data: " + json.dumps({
            "id": ident, "object": "text_completion", "created": created,
            "model": served.name, "choices": [{"text": text, "index": 0, "logprobs": None,
                                               "finish_reason": reason}]}) + "\n\n").encode()

    def error(status: int, message: str, code: str) -> bytes:
        return ("data: " + json.dumps(RequestError(status, message, code=code).body())
                + "\n\n").encode()

    def work() -> Any:
        try:
            with lock:
                return served.complete([ids], max_tokens, 1,
                                       completion_settings(temperature, top_p, seed),
                                       lambda piece: loop.call_soon_threadsafe(
                                           pieces.put_nowait, piece), cancelled)[0][0]
        finally:
            loop.call_soon_threadsafe(pieces.put_nowait, None)

    def release(done: Any) -> None:
        streams[0] -= 1
        if not done.cancelled():
            done.exception()  # read here: a stream whose client went away does not await it

    streams[0] += 1  # counted from here (a response never sent never started its work)
    try:
        done = loop.run_in_executor(executor, work)
    except BaseException:
        streams[0] -= 1
        raise
    done.add_done_callback(release)
    try:
        while True:
            piece = await pieces.get()
            if piece is None:
                break
            if piece:
                yield chunk(piece, None)
        try:
            _, reason, _ = await done
        except GtdslError as e:
            yield error(400, e.diagnostics[0].message, e.diagnostics[0].code)
            return
        except Exception as e:  # noqa: BLE001 - the client hears of it, the server goes on
            yield error(500, f"internal error: {type(e).__name__}", "internal_error")
            return
        yield chunk("", reason)
        yield b"data: [DONE]\n\n"
    finally:
        cancelled.set()  # the client went away (or all was sent): stop generating


class LocalServer:
    """An ASGI app served by uvicorn on a free port of 127.0.0.1, in a thread of this process,
    for tests and benchmarks: ``with LocalServer(create_app(folder)) as s: httpx.get(s.url
    + "/health")``."""

    def __init__(self, app: Any, start_timeout: float = 30.0) -> None:
        import socket

        import uvicorn

        self.app = app
        self.start_timeout = start_timeout
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.__exit__()
                raise serve_error("the local server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def serve(folder: str, host: str = "127.0.0.1", port: int = 8000,
          limits: Limits | None = None, log_level: str = "info") -> None:
    """Serve ``folder`` until interrupted (uvicorn)."""
    import uvicorn

    app = create_app(folder, limits)
    uvicorn.run(app, host=host, port=port, log_level=log_level,
                limit_concurrency=(limits or Limits()).max_queue + 64)


__all__ = ["Batcher", "Limits", "LocalServer", "RequestError", "Served", "completion_settings",
           "create_app", "serve"]
