"""Model-based adversarial trace generators and the resumable generation driver.

Two generators write the incorrect reasoning traces from
:func:`lm_eval_medsplit.prompts.trace_generation_messages`:

- :class:`EndpointGenerator`: any OpenAI-compatible ``/v1/chat/completions`` endpoint
  (vLLM, TGI, llama.cpp server, a hosted API), with bounded thread concurrency and HTTP
  retries with exponential backoff; ``adversarial_source = "endpoint:<url>#<model>"``.
- :class:`TransformersGenerator`: a local ``transformers`` causal LM (path or hub id),
  batched ``generate`` over the tokenizer's chat template, GPU when present;
  ``adversarial_source = "model:<path or id>"``.

:func:`generate_traces` drives either: for every record and trace index ``k`` it asks for
an argument for ``wrong_letter(record, k)``, checks it with the scoring core
(:func:`lm_eval_medsplit.adversarial.check_trace`: it must conclude with that letter,
never the gold one), re-asks a failed trace up to ``max_attempts`` times and then
rejects it, counting everything in :class:`GenerationStats`. A rejected slot stays an
empty string (so trace ``k`` always argues for ``wrong_letter(record, k)``), or, with
``on_reject="offline"``, is filled with the offline template and the record's source
becomes ``"<model source>+offline-template"``. Per-trace status lives in
``record.meta["adversarial_generation"]`` (with the run's prompt ``style``).

Resumable and crash-safe: with ``out`` set, finished records are appended chunk by chunk
to the resume file ``<out>.partial`` (never to ``out`` itself); a re-run reads ``out``
and the resume file back, skips records whose traces were all accepted from the same
source in the same ``style`` (a run in another style asks for every trace again), re-asks
only the missing slots of partial ones, and at the end replaces ``out``
atomically with every record in input order and removes the resume file. A kill at any
point leaves an earlier ``out`` intact; ``resume=False`` ignores both files and empties
only the resume file. The run holds a lock on ``out``. After ``max_consecutive_errors``
calls in a row that returned no text (a dead or refusing endpoint), the run stops with
one :class:`GenerationError`; what was done stays in the resume file.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lm_eval_medsplit.adversarial import (
    N_TRACES,
    OFFLINE_SOURCE,
    check_trace,
    combined_source,
    offline_trace,
    raise_trace_input_problems,
    trace_input_problems,
    wrong_letters,
)
from lm_eval_medsplit.fileio import atomic_path, locked
from lm_eval_medsplit.prompts import check_style
from lm_eval_medsplit.schema import MCQRecord, RowError, record_from_row

META_KEY = "adversarial_generation"
STATUS_OK = "ok"
STATUS_REJECTED = "rejected"
STATUS_OFFLINE = "offline"
ON_REJECT = ("empty", "offline")


class GenerationError(RuntimeError):
    """A generator call that failed for good (HTTP error after retries, bad response)."""


# --------------------------------------------------------------------------- jobs


@dataclass
class TraceJob:
    """One request: trace ``k`` of ``record`` arguing for ``letter`` (attempt ``attempt``)."""

    record: MCQRecord
    k: int
    letter: str
    record_hash: str
    attempt: int = 0
    style: str = "cot"
    """Prompt style whose final-answer form the trace ends with (``Answer: X`` or ``\\boxed{X}``)."""

    @property
    def messages(self) -> list[dict[str, str]]:
        from lm_eval_medsplit.prompts import trace_generation_messages

        return trace_generation_messages(self.record, self.letter, self.style)

    @property
    def seed(self) -> int:
        """Deterministic per (record, k, attempt): reproducible sampling, distinct retries."""
        h = hashlib.sha256(f"{self.record_hash}:{self.k}:{self.attempt}".encode()).hexdigest()
        return int(h[:8], 16) & 0x7FFFFFFF


class TraceGenerator(Protocol):
    """What :func:`generate_traces` needs from a generator."""

    source: str

    def generate(self, jobs: Sequence[TraceJob]) -> list[str | BaseException]:
        """One text (or the exception that prevented it) per job, in order."""

    def counters(self) -> dict[str, int]:
        """Generator-level counters (HTTP retries...) for the stats."""


# --------------------------------------------------------------------------- endpoint


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


# --------------------------------------------------------------------------- transformers


class TransformersGenerator:
    """Traces from a local ``transformers`` causal LM (a path, or a hub id loaded the
    usual way, which needs the hub or its cache).

    Prompts go through the tokenizer's chat template (``add_generation_prompt=True``; a
    template that rejects the system role gets it folded into the user turn; a tokenizer
    without a template gets plain ``role: content`` lines). Jobs are sorted by prompt
    length and generated ``batch_size`` at a time with left padding. Sampling
    (``temperature > 0``, default 0.7) is seeded per batch from the jobs, so a re-run
    reproduces its traces; retries always sample.
    """

    def __init__(self, model: str, *, batch_size: int = 8, max_new_tokens: int = 1024,
                 temperature: float = 0.7, top_p: float = 0.95, device: str | None = None,
                 dtype: str = "auto", trust_remote_code: bool = False):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_id = str(model)
        self.source = f"model:{self.model_id}"
        self.batch_size = max(1, batch_size)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_id, trust_remote_code=trust_remote_code)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        kw: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if dtype != "auto" or self.device != "cpu":
            kw["dtype"] = getattr(torch, dtype) if dtype != "auto" else "auto"
        self.model = AutoModelForCausalLM.from_pretrained(self.model_id, **kw).to(self.device)
        self.model.eval()
        self._counts: Counter[str] = Counter()

    def counters(self) -> dict[str, int]:
        return dict(self._counts)

    def render(self, messages: list[dict[str, str]]) -> str:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            try:
                return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            except Exception:  # noqa: BLE001 - templates that refuse a system turn
                merged = [{"role": "user", "content": "\n\n".join(m["content"] for m in messages)}]
                return tok.apply_chat_template(merged, add_generation_prompt=True, tokenize=False)
        return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\n\nassistant:"

    def generate(self, jobs: Sequence[TraceJob]) -> list[str | BaseException]:
        import torch

        prompts = [self.render(j.messages) for j in jobs]
        order = sorted(range(len(jobs)), key=lambda i: len(prompts[i]))
        out: list[str | BaseException] = [""] * len(jobs)
        for s in range(0, len(order), self.batch_size):
            idx = order[s: s + self.batch_size]
            batch = [prompts[i] for i in idx]
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(self.device) for k, v in enc.items()}
            sample = self.temperature > 0 or any(jobs[i].attempt for i in idx)
            gen_kw: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": sample,
                                      "pad_token_id": self.tokenizer.pad_token_id}
            if sample:
                gen_kw.update(temperature=self.temperature if self.temperature > 0 else 0.7,
                              top_p=self.top_p)
                torch.manual_seed(min(jobs[i].seed for i in idx))
            try:
                with torch.no_grad():
                    ids = self.model.generate(**enc, **gen_kw)
            except (RuntimeError, ValueError) as e:  # OOM, bad config: fail this batch only
                self._counts["generate_errors"] += 1
                for i in idx:
                    out[i] = GenerationError(f"{self.source}: generate failed: {e}")
                continue
            self._counts["batches"] += 1
            new = ids[:, enc["input_ids"].shape[1]:]
            for i, row in zip(idx, new):
                out[i] = self.tokenizer.decode(row, skip_special_tokens=True)
        return out

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- driver


@dataclass
class GenerationStats:
    """What one :func:`generate_traces` run did. Every requested trace ends up exactly
    once in ``accepted`` or ``rejected``."""

    source: str
    n_traces: int
    records: int = 0
    resumed: int = 0
    """Records skipped because ``out`` (or the input) already had all their traces."""
    partial: int = 0
    """Records with some traces kept from ``out`` and the rest asked for again."""
    requested: int = 0
    """Traces asked for in this run."""
    accepted: int = 0
    rejected: int = 0
    """Traces still failing the check after ``max_attempts`` attempts."""
    fallback_offline: int = 0
    """Rejected traces replaced by the offline template (``on_reject="offline"``)."""
    attempts: int = 0
    retries: int = 0
    """Attempts after the first one (a failed check or a failed call)."""
    errors: int = 0
    """Attempts that produced no text (HTTP failure after retries, generate error)."""
    consecutive_errors: int = 0
    """Attempts in a row, up to now, that produced no text."""
    reasons: Counter = field(default_factory=Counter)
    """Why attempts failed (``concludes with the gold letter B`` grouped by kind)."""
    generator: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    style: str = "cot"
    """Prompt style of the traces' final-answer line."""

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "n_traces": self.n_traces, "records": self.records,
                "resumed": self.resumed, "partial": self.partial, "requested": self.requested,
                "accepted": self.accepted, "rejected": self.rejected,
                "fallback_offline": self.fallback_offline, "attempts": self.attempts,
                "retries": self.retries, "errors": self.errors,
                "reasons": dict(self.reasons.most_common()), "generator": dict(self.generator),
                "wall_s": round(self.wall_s, 3), "style": self.style}


def _reason_kind(reason: str) -> str:
    for prefix in ("concludes with the gold letter", "concludes with", "no final answer",
                   "empty trace", "error"):
        if reason.startswith(prefix):
            return prefix
    return reason[:60]


def _status(record: MCQRecord) -> dict[str, Any] | None:
    st = record.meta.get(META_KEY)
    return st if isinstance(st, dict) else None


def _kept_slots(record: MCQRecord, source: str, n: int,
                record_hash: str, style: str = "cot") -> dict[int, tuple[str, int]]:
    """``k -> (trace, attempts)`` for the slots of ``record`` (from ``out`` or the input)
    already accepted from ``source`` in ``style`` for the same question content (a status
    without a style is from before styles were recorded: ``cot``)."""
    st = _status(record)
    if (not st or st.get("source") != source or st.get("record_hash") != record_hash
            or st.get("style", "cot") != style):
        return {}
    statuses = st.get("status") or []
    tries = st.get("attempts") or []
    kept = {}
    for k in range(min(n, len(record.adversarial_traces), len(statuses))):
        if statuses[k] == STATUS_OK and record.adversarial_traces[k].strip():
            kept[k] = (record.adversarial_traces[k], int(tries[k]) if k < len(tries) else 1)
    return kept


def _meta(source, record_hash, letters, status, attempts, reasons, style) -> dict[str, Any]:
    return {"source": source, "record_hash": record_hash, "letters": list(letters),
            "status": list(status), "attempts": list(attempts), "reasons": list(reasons),
            "style": style}


def read_previous(path: Path) -> dict[tuple[str, str], MCQRecord]:
    """Rows of an earlier run's ``out`` by ``(benchmark, id)``; later lines win (a run
    that was cut off appended its finished chunks after the older rows)."""
    prev: dict[tuple[str, str], MCQRecord] = {}
    if not path.is_file():
        return prev
    from lm_eval_medsplit.fileio import JSONProblem, iter_lines, parse_json

    for i, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            row = parse_json(line)
            if not isinstance(row, dict):
                raise RowError("<row>", f"expected a JSON object, got {type(row).__name__}")
            rec = record_from_row(row, str(row.get("benchmark") or ""), keep_extra=True)
        except (JSONProblem, RowError) as e:
            if not line.endswith("\n"):
                break  # the last line of a run killed mid-write
            raise ValueError(f"{path}: line {i}: cannot resume from this file ({e}); "
                             f"use --no-resume to start over") from None
        prev[(rec.benchmark, rec.id)] = rec
    return prev


def _drop_partial_tail(path: Path) -> None:
    """Cut a half-written last line (a run killed mid-write) off ``path`` before appending
    to it, so the next line starts on its own; :func:`read_previous` already ignores it
    and its record is generated again."""
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        block = 1 << 16
        end = size
        while end > 0:  # find the last newline, reading backwards
            start = max(0, end - block)
            f.seek(start)
            i = f.read(end - start).rfind(b"\n")
            if i >= 0:
                f.truncate(start + i + 1)
                return
            end = start
        f.truncate(0)


def partial_path(out: str | Path) -> Path:
    """The resume file of a run writing ``out``."""
    out = Path(out)
    return out.with_name(f"{out.name}.partial")


def _write_line(f, rec: MCQRecord) -> None:
    f.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")


def generate_traces(records: Sequence[MCQRecord], generator: TraceGenerator, *,
                    n: int = N_TRACES, max_attempts: int = 3, out: str | Path | None = None,
                    resume: bool = True, on_reject: str = "empty", chunk_size: int = 64,
                    progress: bool = True,
                    on_chunk: Callable[[list[MCQRecord]], None] | None = None,
                    max_consecutive_errors: int | None = 16,
                    style: str = "cot") -> tuple[list[MCQRecord], GenerationStats]:
    """Give every record ``n`` model traces (see the module docstring). Records are
    changed in place and returned in input order with the run's stats.

    Raises :class:`TraceInputError` listing every record that cannot get traces (no gold
    letter, fewer than two options, empty question) before any request is made.
    """
    if on_reject not in ON_REJECT:
        raise ValueError(f"on_reject must be one of {', '.join(ON_REJECT)}, got {on_reject!r}")
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    raise_trace_input_problems(trace_input_problems(records))
    if out is None:
        return _generate(records, generator, n, max_attempts, None, resume, on_reject,
                         chunk_size, progress, on_chunk, max_consecutive_errors, style)
    with locked(out, "--out"):
        return _generate(records, generator, n, max_attempts, Path(out), resume, on_reject,
                         chunk_size, progress, on_chunk, max_consecutive_errors, style)


def _generate(records, generator, n, max_attempts, out_path, resume, on_reject, chunk_size,
              progress, on_chunk, max_consecutive_errors, style):
    t0 = time.perf_counter()
    stats = GenerationStats(source=generator.source, n_traces=n, records=len(records),
                            style=check_style(style))
    part = partial_path(out_path) if out_path is not None else None
    prev = {}
    if out_path is not None and resume:
        prev = read_previous(out_path)
        prev.update(read_previous(part))  # the resume file is newer than ``out``

    # what is left to do, per record: kept slots come from ``out`` (or the input itself)
    plans: list[tuple[MCQRecord, str, list[str], dict[int, tuple[str, int]]]] = []
    for r in records:
        h = r.content_hash()
        letters = wrong_letters(r, n)
        old = prev.get((r.benchmark, r.id))
        kept = _kept_slots(old, generator.source, n, h, stats.style) if old is not None else {}
        if not kept:
            kept = _kept_slots(r, generator.source, n, h, stats.style)
        if len(kept) == n:
            r.adversarial_traces = [kept[k][0] for k in range(n)]
            r.adversarial_source = generator.source
            r.meta[META_KEY] = _meta(generator.source, h, letters, [STATUS_OK] * n,
                                     [kept[k][1] for k in range(n)], [None] * n, stats.style)
            stats.resumed += 1
            continue
        if kept:
            stats.partial += 1
        plans.append((r, h, letters, kept))
    stats.requested = sum(n - len(kept) for *_, kept in plans)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=stats.requested, desc=f"traces ({generator.source})", unit="trace",
                   dynamic_ncols=True)
    fh = None
    if part is not None:
        append = resume and part.exists()
        if append:
            _drop_partial_tail(part)
        fh = open(part, "a" if append else "w", encoding="utf-8")
    try:
        for c in range(0, len(plans), max(1, chunk_size)):
            chunk = plans[c: c + max(1, chunk_size)]
            _run_chunk(chunk, generator, n, max_attempts, on_reject, stats, bar,
                       max_consecutive_errors, part)
            if fh is not None:
                for r, *_ in chunk:
                    _write_line(fh, r)
                fh.flush()
            if on_chunk is not None:
                on_chunk([r for r, *_ in chunk])
    finally:
        if fh is not None:
            fh.close()
        if bar is not None:
            bar.close()
    stats.generator = generator.counters()
    if out_path is not None:  # final file: every input record once, in input order
        with atomic_path(out_path, lock=False) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                _write_line(f, r)
        part.unlink(missing_ok=True)
    stats.wall_s = time.perf_counter() - t0
    return list(records), stats


def _sub_batches(jobs: list[TraceJob], generator) -> list[list[TraceJob]]:
    """Jobs in batches of a few times the generator's parallelism, so a dead endpoint is
    noticed after a few rounds of calls rather than after a whole chunk."""
    width = getattr(generator, "concurrency", None) or getattr(generator, "batch_size", None)
    size = max(1, 4 * int(width)) if width else max(1, len(jobs))
    return [jobs[i: i + size] for i in range(0, len(jobs), size)]


def _call(generator, jobs: list[TraceJob], stats: GenerationStats,
          max_consecutive_errors: int | None, resume_file: Path | None) -> list:
    results: list = []
    for batch in _sub_batches(jobs, generator):
        got = generator.generate(batch)
        results += got
        last = None
        for res in got:
            if isinstance(res, BaseException):
                stats.consecutive_errors += 1
                last = res
            else:
                stats.consecutive_errors = 0
        if max_consecutive_errors and stats.consecutive_errors >= max_consecutive_errors:
            where = (f"; the {stats.accepted:,} trace(s) finished so far are kept in {resume_file}: "
                     f"run the same command again to resume" if resume_file is not None else "")
            raise GenerationError(f"{generator.source}: {stats.consecutive_errors} calls in a row "
                                  f"failed, stopping (last: {last}){where}")
    return results


def _run_chunk(chunk, generator: TraceGenerator, n: int, max_attempts: int, on_reject: str,
               stats: GenerationStats, bar, max_consecutive_errors: int | None = None,
               resume_file: Path | None = None) -> None:
    slots: dict[int, list[str]] = {}
    status: dict[int, list[str]] = {}
    attempts: dict[int, list[int]] = {}
    reasons: dict[int, list[str | None]] = {}
    pending: list[TraceJob] = []
    for j, (r, h, letters, kept) in enumerate(chunk):
        slots[j] = [kept[k][0] if k in kept else "" for k in range(n)]
        status[j] = [STATUS_OK if k in kept else STATUS_REJECTED for k in range(n)]
        attempts[j] = [kept[k][1] if k in kept else 0 for k in range(n)]
        reasons[j] = [None] * n
        pending += [TraceJob(r, k, letters[k], h, style=stats.style) for k in range(n) if k not in kept]
    index = {id(r): j for j, (r, *_) in enumerate(chunk)}
    for attempt in range(max_attempts):
        if not pending:
            break
        for job in pending:
            job.attempt = attempt
        results = _call(generator, pending, stats, max_consecutive_errors, resume_file)
        stats.attempts += len(pending)
        if attempt:
            stats.retries += len(pending)
        failed: list[TraceJob] = []
        for job, res in zip(pending, results):
            j = index[id(job.record)]
            attempts[j][job.k] += 1
            if isinstance(res, BaseException):
                stats.errors += 1
                ok, why = False, f"error: {res}"
            else:
                res = res.strip()
                ok, why = check_trace(job.record, res, job.letter)
            if ok:
                slots[j][job.k] = res
                status[j][job.k] = STATUS_OK
                reasons[j][job.k] = None
                stats.accepted += 1
                if bar is not None:
                    bar.update(1)
            else:
                stats.reasons[_reason_kind(why)] += 1
                reasons[j][job.k] = why[:300]
                failed.append(job)
        pending = failed
        if bar is not None:
            bar.set_postfix(accepted=stats.accepted, retries=stats.retries)
    for job in pending:  # rejected for good
        j = index[id(job.record)]
        stats.rejected += 1
        if on_reject == "offline":
            slots[j][job.k] = offline_trace(job.record, job.k, letter=job.letter, style=job.style)
            status[j][job.k] = STATUS_OFFLINE
            stats.fallback_offline += 1
        if bar is not None:
            bar.update(1)
    for j, (r, h, letters, _kept) in enumerate(chunk):
        n_off = status[j].count(STATUS_OFFLINE)
        r.adversarial_traces = slots[j]
        r.adversarial_source = combined_source(generator.source, n_off)
        r.meta[META_KEY] = _meta(generator.source, h, letters, status[j], attempts[j], reasons[j],
                                 stats.style)


__all__ = [
    "EndpointGenerator", "TransformersGenerator", "TraceJob", "TraceGenerator",
    "GenerationStats", "GenerationError", "generate_traces", "chat_completions_url",
    "read_previous", "META_KEY", "OFFLINE_SOURCE",
]
