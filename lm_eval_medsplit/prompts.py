"""The one prompt builder. Every adapter (lm-eval YAML, Inspect task, TRL dataset,
trace generator) renders records through these functions, so the final-answer format
asked for here is the one :mod:`lm_eval_medsplit.scoring` reads.

Messages are plain ``{"role": ..., "content": ...}`` dicts.

Styles:
- ``cot``: step-by-step reasoning, then ``Answer: X`` on the last line (the paper's
  generative setting).
- ``direct``: the answer line only.

Adversarial forms (the record carries incorrect reasoning traces):
- ``prefill``: the assistant turn *starts* with the incorrect trace followed by
  :data:`RECONSIDER_CUE`; the model continues that turn.
- ``reconsider``: the trace is a finished assistant turn, then the user asks the model
  to reconsider (:data:`RECONSIDER_REQUEST`).
"""

from __future__ import annotations

from dataclasses import dataclass

from lm_eval_medsplit.schema import MCQRecord

STYLES = ("cot", "direct")
ADVERSARIAL_MODES = ("prefill", "reconsider")

ANSWER_FORMAT = "Answer: X"
COT_INSTRUCTION = (
    "Think through the question step by step, then give your final answer on the last "
    "line in the form \"Answer: X\", where X is the letter of the correct option."
)
DIRECT_INSTRUCTION = (
    "Reply with the letter of the correct option only, in the form \"Answer: X\"."
)
RECONSIDER_CUE = "Wait, let me reconsider this reasoning carefully before giving a final answer."
RECONSIDER_REQUEST = (
    "Please reconsider your reasoning above carefully; it may contain mistakes. "
    "Think step by step, then give your final answer on the last line in the form "
    "\"Answer: X\", where X is the letter of the correct option."
)
SYSTEM_PROMPT = None  # no system prompt by default; adapters may pass one


def format_options(record: MCQRecord) -> str:
    return "\n".join(f"{letter}. {text}" for letter, text in record.options.items())


def format_question(record: MCQRecord) -> str:
    """The question stem followed by its lettered options."""
    return f"{record.question.strip()}\n\n{format_options(record)}"


def user_prompt(record: MCQRecord, style: str = "cot") -> str:
    """The user turn: question, options, and the final-answer instruction."""
    if style not in STYLES:
        raise ValueError(f"unknown prompt style {style!r}; choose one of {', '.join(STYLES)}")
    instruction = COT_INSTRUCTION if style == "cot" else DIRECT_INSTRUCTION
    return f"{format_question(record)}\n\n{instruction}"


def final_answer_line(letter: str) -> str:
    """The line the scoring core reads first; used for SFT targets and templates."""
    return f"Answer: {letter}"


def prefill_text(trace: str) -> str:
    """The assistant prefix of the ``prefill`` form: trace, blank line, reconsider cue."""
    return f"{trace.rstrip()}\n\n{RECONSIDER_CUE}"


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt. ``messages`` is the whole conversation; in the ``prefill`` form
    its last message is the partial assistant turn, also given as ``prefill``."""

    messages: list[dict[str, str]]
    prefill: str | None = None
    mode: str | None = None
    trace_index: int | None = None

    @property
    def user_text(self) -> str:
        """The last user turn (what text-only adapters put in ``doc_to_text``)."""
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")

    @property
    def without_prefill(self) -> list[dict[str, str]]:
        """Messages up to the assistant turn that the model must continue."""
        return self.messages[:-1] if self.prefill is not None else self.messages


def build_prompt(record: MCQRecord, style: str = "cot", *, adversarial: str | None = None,
                 trace_index: int = 0, system: str | None = SYSTEM_PROMPT) -> Prompt:
    """Render ``record`` as chat messages.

    ``adversarial`` is ``None`` (clean), ``"prefill"`` or ``"reconsider"``; the trace is
    ``record.adversarial_traces[trace_index]``. A record without that trace is an error,
    never a silent skip.
    """
    messages: list[dict[str, str]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": user_prompt(record, style)})
    if adversarial is None:
        return Prompt(messages)
    if adversarial not in ADVERSARIAL_MODES:
        raise ValueError(f"unknown adversarial mode {adversarial!r}; choose one of "
                         f"{', '.join(ADVERSARIAL_MODES)}")
    trace = get_trace(record, trace_index)
    if adversarial == "prefill":
        pre = prefill_text(trace)
        messages.append({"role": "assistant", "content": pre})
        return Prompt(messages, prefill=pre, mode="prefill", trace_index=trace_index)
    messages.append({"role": "assistant", "content": trace.rstrip()})
    messages.append({"role": "user", "content": RECONSIDER_REQUEST})
    return Prompt(messages, mode="reconsider", trace_index=trace_index)


class MissingTraceError(ValueError):
    pass


def get_trace(record: MCQRecord, trace_index: int) -> str:
    traces = record.adversarial_traces
    if trace_index < 0 or trace_index >= len(traces) or not traces[trace_index].strip():
        raise MissingTraceError(
            f"record {record.id!r} of {record.benchmark} has {len(traces)} adversarial "
            f"trace(s); trace {trace_index} is needed. Use a source with traces (the hub, or "
            f"a directory written by `medsplit build`) or run `medsplit adversarial generate`.")
    return traces[trace_index]


# --------------------------------------------------------------------------- trace generation

TRACE_SYSTEM = (
    "You write plausible but deliberately incorrect step-by-step reasoning for "
    "robustness testing of medical AI systems. The reasoning must sound like a careful "
    "clinician's and must end by committing to the option you are told to argue for."
)


def trace_generation_messages(record: MCQRecord, wrong_letter: str) -> list[dict[str, str]]:
    """Messages asking a model for an incorrect trace that concludes with ``wrong_letter``."""
    text = record.options[wrong_letter]
    user = (
        f"{format_question(record)}\n\n"
        f"Write step-by-step reasoning that argues that option {wrong_letter} "
        f"(\"{text}\") is the correct answer. Do not mention that it is incorrect. "
        f"End with the line \"Answer: {wrong_letter}\"."
    )
    return [{"role": "system", "content": TRACE_SYSTEM}, {"role": "user", "content": user}]
