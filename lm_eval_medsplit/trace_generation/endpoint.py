"""Adversarial traces from an OpenAI-compatible chat-completions endpoint.

Accepts: an endpoint URL (``http://h:8000``, ``.../v1`` or ``.../v1/chat/completions``),
optionally the model name (default: the first one ``GET <base>/models`` lists) and an API
key (or the environment variable holding it). Guarantees: ``concurrency`` requests at
most at once; a connection error, timeout or status 408/409/425/429/5xx is retried with
jittered exponential backoff honouring ``Retry-After``, anything else fails that job at
once; :meth:`EndpointGenerator.generate` returns one text or :class:`GenerationError` per
job and never raises for one bad call; the key is never logged. httpx and tenacity (the
``endpoint`` extra) load when a generator is made.
"""

from __future__ import annotations

import os
import random
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lm_eval_medsplit.trace_generation.jobs import GenerationError, TraceJob


def chat_completions_url(url: str) -> tuple[str, str]:
    """``(base, completions_url)`` for a user's endpoint URL: ``http://h:8000``,
    ``http://h:8000/v1`` and ``http://h:8000/v1/chat/completions`` all work."""
    u = url.strip().rstrip("/")
    if not (u.startswith("http://") or u.startswith("https://")):
        raise ValueError(f"endpoint {url!r} must start with http:// or https://")
    if u.endswith("/chat/completions"):
        base = u[: -len("/chat/completions")]
    elif u.endswith("/v1"):
        base = u
    else:
        base = u + "/v1"
    return base, base + "/chat/completions"


_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class EndpointGenerator:
    """Traces from an OpenAI-compatible chat-completions endpoint.

    ``concurrency`` requests run at once (threads sharing one ``httpx.Client``). A
    connection error, timeout or status 408/409/425/429/5xx is retried up to
    ``http_retries`` times with exponential backoff (``backoff * 2**i`` seconds, capped at
    ``max_backoff``, jittered, honouring ``Retry-After``); any other status fails the job
    at once. ``model`` defaults to the first id of ``GET <base>/models``. The API key is
    read from ``api_key`` or the environment variable ``api_key_env`` and never logged.
    """

    def __init__(self, url: str, model: str | None = None, *, api_key: str | None = None,
                 api_key_env: str = "OPENAI_API_KEY", concurrency: int = 8,
                 http_retries: int = 4, backoff: float = 0.5, max_backoff: float = 30.0,
                 timeout: float = 300.0, temperature: float = 0.7, top_p: float = 0.95,
                 max_tokens: int = 1024, extra_body: dict[str, Any] | None = None):
        try:
            import httpx
            import tenacity  # noqa: F401
        except ImportError as e:
            raise GenerationError(f"an endpoint needs httpx and tenacity ({e}): "
                                  f"pip install 'lm-eval-medsplit[endpoint]'") from None

        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.base, self.url = chat_completions_url(url)
        key = api_key if api_key is not None else os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout,
                                   limits=httpx.Limits(max_connections=concurrency,
                                                       max_keepalive_connections=concurrency))
        self.concurrency = concurrency
        self.http_retries = http_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        try:
            self.model = model or self._first_model()
        except BaseException:
            self.client.close()
            raise
        self.source = f"endpoint:{self.base}#{self.model}"
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="medsplit-trace")

    def _first_model(self) -> str:
        r = self._request("GET", self.base + "/models")
        try:
            return str(r.json()["data"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            raise GenerationError(f"{self.base}/models: no model listed; pass the model name "
                                  f"(--endpoint-model)") from None

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counts[key] += n

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def _request(self, method: str, url: str, payload: dict | None = None):
        # httpx + tenacity rather than the openai SDK: httpx was already the client, tenacity is
        # one small pure-Python package (the SDK pulls in pydantic, anyio, jiter...), and we keep
        # per-attempt counters, Retry-After and any extra_body a vLLM/TGI server takes.
        import httpx
        from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt

        def wait(state) -> float:
            err = state.outcome.exception()
            after = err.retry_after if isinstance(err, _Retryable) else None
            if after is not None:
                return min(self.max_backoff, after)
            delay = min(self.max_backoff, self.backoff * (2 ** (state.attempt_number - 1)))
            return delay * (0.5 + random.random() / 2)  # jitter

        def attempt():
            try:
                r = self.client.request(method, url, json=payload)
            except httpx.RequestError as e:  # connection, timeout, decoding
                raise _Retryable(f"{type(e).__name__}: {e}") from None
            if r.status_code < 400:
                return r
            last = f"HTTP {r.status_code}: {r.text[:200]}"
            if r.status_code not in _RETRY_STATUS:
                self._count("http_errors")
                raise GenerationError(f"{method} {url}: {last}")
            raise _Retryable(last, _retry_after(r.headers.get("retry-after")))

        retrying = Retrying(stop=stop_after_attempt(self.http_retries + 1), wait=wait,
                            retry=retry_if_exception_type(_Retryable),
                            before_sleep=lambda state: self._count("http_retries"))
        try:
            r = retrying(attempt)
        except RetryError as e:
            self._count("http_errors")
            raise GenerationError(f"{method} {url}: gave up after {self.http_retries + 1} "
                                  f"attempt(s); last: {e.last_attempt.exception()}") from None
        self._count("http_requests")
        return r

    def _one(self, job: TraceJob) -> str | BaseException:
        temperature = self.temperature
        if job.attempt and temperature <= 0:
            temperature = 0.7  # a greedy retry would repeat the rejected trace
        payload = {"model": self.model, "messages": job.messages, "max_tokens": self.max_tokens,
                   "temperature": temperature, "top_p": self.top_p, "seed": job.seed,
                   **self.extra_body}
        try:
            r = self._request("POST", self.url, payload)
            data = r.json()
            content = data["choices"][0]["message"].get("content")
        except GenerationError as e:
            return e
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            self._count("bad_responses")
            return GenerationError(f"unexpected response shape from {self.url}: {e!r}")
        return "" if content is None else str(content)

    def _safe(self, job: TraceJob) -> str | BaseException:
        try:
            return self._one(job)
        except Exception as e:  # noqa: BLE001 - one bad call must not stop the run
            self._count("bad_responses")
            return GenerationError(f"{type(e).__name__}: {e}")

    def generate(self, jobs: Sequence[TraceJob]) -> list[str | BaseException]:
        return list(self._pool.map(self._safe, jobs))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()


class _Retryable(Exception):
    """A failed HTTP attempt worth repeating (connection error, timeout, 408/409/425/429/5xx)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
