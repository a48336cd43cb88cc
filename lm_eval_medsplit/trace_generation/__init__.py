"""Model-based adversarial trace generators and the resumable generation driver.

One module each:

- :mod:`.jobs`: what a generator is asked for (:class:`TraceJob`), the
  :class:`TraceGenerator` protocol and :class:`GenerationError`.
- :mod:`.endpoint`: :class:`EndpointGenerator`, any OpenAI-compatible
  ``/v1/chat/completions`` endpoint (vLLM, TGI, llama.cpp server, a hosted API), with
  bounded thread concurrency and HTTP retries with exponential backoff (httpx + tenacity,
  the ``endpoint`` extra); ``adversarial_source = "endpoint:<url>#<model>"``.
- :mod:`.local_model`: :class:`TransformersGenerator`, a local ``transformers`` causal LM
  (path or hub id), batched ``generate`` over the tokenizer's chat template, GPU when
  present (torch + transformers, the ``train`` extra); ``adversarial_source = "model:<path or id>"``.
- :mod:`.driver`: :func:`generate_traces`, which drives either, checks every trace with the
  scoring core, retries or rejects it, and writes a resumable, crash-safe output.

Importing this package is light: httpx, tenacity, torch and transformers load when a
generator is made, tqdm when a run shows progress.
"""

from __future__ import annotations

from lm_eval_medsplit.adversarial import OFFLINE_SOURCE
from lm_eval_medsplit.trace_generation.driver import (
    META_KEY,
    ON_REJECT,
    STATUS_OFFLINE,
    STATUS_OK,
    STATUS_REJECTED,
    GenerationStats,
    generate_traces,
    partial_path,
    read_previous,
)
from lm_eval_medsplit.trace_generation.endpoint import EndpointGenerator, chat_completions_url
from lm_eval_medsplit.trace_generation.jobs import GenerationError, TraceGenerator, TraceJob
from lm_eval_medsplit.trace_generation.local_model import TransformersGenerator

__all__ = [
    "EndpointGenerator", "TransformersGenerator", "TraceJob", "TraceGenerator",
    "GenerationStats", "GenerationError", "generate_traces", "chat_completions_url",
    "read_previous", "META_KEY", "OFFLINE_SOURCE",
    "partial_path", "STATUS_OK", "STATUS_REJECTED", "STATUS_OFFLINE", "ON_REJECT",
]
