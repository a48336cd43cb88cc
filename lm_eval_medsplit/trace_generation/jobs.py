"""What a trace generator is asked for and what it must answer.

Accepts: a record, a trace index ``k`` and the wrong letter that trace argues for.
Guarantees: :class:`TraceJob` gives the chat messages of
:func:`lm_eval_medsplit.prompts.trace_generation_messages` and a sampling seed that is a
pure function of (record content, ``k``, attempt); a :class:`TraceGenerator` answers one
text or one exception per job, in order, and never raises for a single failed call.
Imports the standard library and the record schema only (the prompt builder on first use).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from lm_eval_medsplit.schema import MCQRecord


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
