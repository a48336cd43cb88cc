"""Former home of the model-based adversarial trace generators and the generation driver.

The code now lives in :mod:`lm_eval_medsplit.trace_generation` (one module per generator
backend, one for the resumable run); this module re-exports the same public names, so
``from lm_eval_medsplit.adversarial_models import generate_traces`` (and every other name
it offered) keeps working. Importing it is as light as before: httpx, tenacity, torch and
transformers still load only when a generator is made.
"""

from __future__ import annotations

from lm_eval_medsplit.trace_generation import (
    META_KEY,
    OFFLINE_SOURCE,
    ON_REJECT,
    STATUS_OFFLINE,
    STATUS_OK,
    STATUS_REJECTED,
    EndpointGenerator,
    GenerationError,
    GenerationStats,
    TraceGenerator,
    TraceJob,
    TransformersGenerator,
    chat_completions_url,
    generate_traces,
    partial_path,
    read_previous,
)

__all__ = [
    "EndpointGenerator", "TransformersGenerator", "TraceJob", "TraceGenerator",
    "GenerationStats", "GenerationError", "generate_traces", "chat_completions_url",
    "read_previous", "META_KEY", "OFFLINE_SOURCE",
    "partial_path", "STATUS_OK", "STATUS_REJECTED", "STATUS_OFFLINE", "ON_REJECT",
]
