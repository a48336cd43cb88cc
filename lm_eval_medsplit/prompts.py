"""The one prompt builder. Every adapter (lm-eval YAML, Inspect task, TRL dataset,
trace generator) renders records through these functions, so the final-answer format
asked for here is the one :mod:`lm_eval_medsplit.scoring` reads.

Messages are plain ``{"role": ..., "content": ...}`` dicts.

Styles (:data:`STYLES`):
- ``cot`` (default): step-by-step reasoning, then ``Answer: X`` on the last line.
- ``direct``: the answer line only.
- ``paper``: the BioMed-R1 / m1 evaluation prompt: the hub question as it is, its options
  only when the question does not already list them, then :data:`PAPER_INSTRUCTION`
  (``\\boxed{}``); scored with ``style="paper"`` by :mod:`lm_eval_medsplit.scoring`.

Options are listed once in every style: :func:`listed_options` finds options the question
already carries (``Answer Choices: (A) ... (B) ...``, or ``A. ...`` / ``(A) ...`` lines
whose texts match the record's options). ``cot``/``direct`` (and the ``mc`` prompt) replace
a trailing listing with the package's own ``A. text`` lines, so a hub question with
embedded options and a raw question without them render alike; ``paper`` keeps the
question verbatim.

Adversarial forms (the record carries incorrect reasoning traces):
- ``prefill``: the assistant turn *starts* with the incorrect trace followed by
  :data:`RECONSIDER_CUE`; the model continues that turn.
- ``reconsider``: the trace is a finished assistant turn, then the user asks the model
  to reconsider (:data:`RECONSIDER_REQUEST`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from lm_eval_medsplit.schema import MCQRecord
from lm_eval_medsplit.scoring.results import STYLES  # noqa: F401 - re-exported: the scoring core's styles
from lm_eval_medsplit.scoring.results import check_style as _check_style

DEFAULT_STYLE = "cot"
ADVERSARIAL_MODES = ("prefill", "reconsider")

ANSWER_FORMAT = "Answer: X"
COT_INSTRUCTION = (
    "Think through the question step by step, then give your final answer on the last "
    "line in the form \"Answer: X\", where X is the letter of the correct option."
)
DIRECT_INSTRUCTION = (
    "Reply with the letter of the correct option only, in the form \"Answer: X\"."
)
#: The instruction line of the BioMed-R1 / m1 evaluation (``paper`` style).
PAPER_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
RECONSIDER_CUE = "Wait, let me reconsider this reasoning carefully before giving a final answer."
RECONSIDER_REQUEST = (
    "Please reconsider your reasoning above carefully; it may contain mistakes. "
    "Think step by step, then give your final answer on the last line in the form "
    "\"Answer: X\", where X is the letter of the correct option."
)
#: The ``reconsider`` request of the ``paper`` style (same final-answer form as its prompt).
PAPER_RECONSIDER_REQUEST = (
    "Please reconsider your reasoning above carefully; it may contain mistakes. "
    + PAPER_INSTRUCTION
)
SYSTEM_PROMPT = None  # no system prompt by default; adapters may pass one


def check_style(style: str) -> str:
    return _check_style(style, "prompt")


def format_options(record: MCQRecord) -> str:
    return "\n".join(f"{letter}. {text}" for letter, text in record.options.items())


# --------------------------------------------------------------------------- embedded options

#: ``Answer Choices:`` (MedXpertQA's own form; also ``Options:``/``Choices:``) at a line start.
_CHOICES_MARK = re.compile(r"(?:^|\n)[ \t]*(?:answer\s+choices|answer\s+options|options|choices)[ \t]*:",
                           re.I)
#: ``(A)`` labels inside an ``Answer Choices:`` run (after a space or the colon, so the
#: ``(D)`` of ``V(D)J`` is not one).
_PAREN_LABEL = re.compile(r"(?<![^\s:])\(([A-Z])\)[ \t]*")
#: The label of an option line: ``A. text``, ``A) text``, ``A: text`` or ``(A) text``.
_LINE_LABEL = re.compile(r"^[ \t]*(?:\(([A-Z])\)|([A-Z])[.):])[ \t]+", re.M)
_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$")


def _norm(text: str) -> str:
    return _EDGE_PUNCT.sub("", " ".join(str(text).split()).casefold())


def _texts_match(found: list[str], wants: list[str]) -> bool:
    """Whether the texts ``found`` under the labels A, B, ... are the record's option
    texts (``wants``, already :func:`_norm`-ed): equal after case, space and
    edge-punctuation folding, or at least 90 similar (rapidfuzz ratio: a hub copy may
    differ by a typo)."""
    if len(found) != len(wants):
        return False
    for text, b in zip(found, wants):
        a = _norm(text)
        if a == b:
            continue
        from rapidfuzz import fuzz

        if fuzz.ratio(a, b) < 90:
            return False
    return True


def _letter(m: re.Match) -> str:
    return m.group(1) or m.group(2)


def _run_end(question: str, labels: list[re.Match], options: dict[str, str],
             wants: list[str]) -> int | None:
    # ``wants``: the normalised option texts, filled on first use (most questions have
    # no candidate listing, and normalising every option of every record costs more than
    # the whole search)
    """Where the listing that starts with ``labels`` (the labels A, B, ... in order, one
    per option) ends, when the texts between them are the options; else ``None``. An
    option's text runs to the next label (option texts may span lines); the last one to
    the end of its line or of as many lines as its option text has (text may follow the
    listing), or to the end of the question."""
    if len(labels) != len(options):
        return None
    if not wants:
        wants.extend(_norm(v) for v in options.values())
    found = [question[a.end():b.start()] for a, b in zip(labels, labels[1:])]
    last = labels[-1].end()
    stops = []
    for n_lines in (1, list(options.values())[-1].strip().count("\n") + 1):
        stop = last - 1
        for _ in range(n_lines):
            stop = question.find("\n", stop + 1)
            if stop < 0:
                break
        stops.append(len(question) if stop < 0 else stop)
    for stop in dict.fromkeys(stops + [len(question)]):
        text = question[last:stop]
        if _texts_match(found + [text], wants):
            return last + len(text.rstrip())
    return None


def _labels_in_order(found: list[re.Match], letters: list[str]) -> list[re.Match]:
    """The first label of each letter in turn (``A``, then the next ``B``...), skipping
    labels of other letters (a ``(C)`` quoted inside an option text)."""
    out: list[re.Match] = []
    for m in found:
        if len(out) == len(letters):
            break
        if _letter(m) == letters[len(out)]:
            out.append(m)
    return out


def listed_options(question: str, options: dict[str, str]) -> tuple[int, int] | None:
    """The span ``(start, end)`` of ``question`` that already lists ``options``, or ``None``.

    Recognised: an ``Answer Choices:`` (or ``Options:``/``Choices:``) marker followed by
    ``(A) text (B) text ...`` on one or several lines, and a block of ``A. text`` /
    ``A) text`` / ``(A) text`` lines. The letters must be exactly the record's, in order,
    and every text must match its option (see :func:`_texts_match`); a listing that does
    not match (other texts, fewer letters) is not the record's."""
    if not options or not question:
        return None
    return _listed(question, tuple(options.items()))


@functools.lru_cache(maxsize=8192)  # every style (and the mc prompt) asks again for one record
def _listed(question: str, items: tuple[tuple[str, str], ...]) -> tuple[int, int] | None:
    options = dict(items)
    letters = list(options)
    wants: list[str] = []
    low = question.casefold()
    marks = _CHOICES_MARK.finditer(question) if ("choices" in low or "options" in low) else ()
    for m in reversed(list(marks)):
        start = m.start() + (1 if question[m.start()] == "\n" else 0)
        for regex in (_PAREN_LABEL, _LINE_LABEL):
            labels = _labels_in_order(list(regex.finditer(question, m.end())), letters)
            if labels and not question[m.end():labels[0].start()].strip():
                end = _run_end(question, labels, options, wants)
                if end is not None:
                    return start, end
    lines = list(_LINE_LABEL.finditer(question))
    for i, x in enumerate(lines):
        if _letter(x) != letters[0]:
            continue
        labels = _labels_in_order(lines[i:], letters)
        end = _run_end(question, labels, options, wants)
        if end is not None:
            return x.start() + len(x.group(0)) - len(x.group(0).lstrip()), end
    return None


def question_stem(record: MCQRecord) -> tuple[str, bool]:
    """``(text, lists_options)``: the question without a *trailing* listing of its own
    options (then ``lists_options`` is False: the caller renders them), or the question
    unchanged with ``lists_options`` True when it lists them elsewhere than at its end."""
    q = record.question.strip()
    span = listed_options(q, record.options)
    if span is None:
        return q, False
    start, end = span
    if q[end:].strip():
        return q, True  # listed mid-question: keep the text as it is, render no second list
    return q[:start].rstrip(), False


def format_question(record: MCQRecord) -> str:
    """The question stem followed by its lettered options (listed once: a trailing
    listing already in the question is replaced by the package's ``A. text`` lines)."""
    stem, listed = question_stem(record)
    return stem if listed else f"{stem}\n\n{format_options(record)}"


def paper_question(record: MCQRecord) -> str:
    """The ``paper`` style's question: the question verbatim when it already lists its
    options, else the question then its ``A. text`` lines."""
    q = record.question.strip()
    if listed_options(q, record.options) is not None:
        return q
    return f"{q}\n{format_options(record)}"


def user_prompt(record: MCQRecord, style: str = DEFAULT_STYLE) -> str:
    """The user turn: question, options (once), and the final-answer instruction."""
    check_style(style)
    if style == "paper":
        return f"{paper_question(record)}\n{PAPER_INSTRUCTION}"
    instruction = COT_INSTRUCTION if style == "cot" else DIRECT_INSTRUCTION
    return f"{format_question(record)}\n\n{instruction}"


def reconsider_request(style: str = DEFAULT_STYLE) -> str:
    """The user turn after the trace in the ``reconsider`` form, in ``style``'s answer form."""
    return PAPER_RECONSIDER_REQUEST if check_style(style) == "paper" else RECONSIDER_REQUEST


def final_answer_line(letter: str, style: str = DEFAULT_STYLE) -> str:
    """The line the scoring core reads first; used for SFT targets and templates
    (``\\boxed{X}`` in the ``paper`` style)."""
    if check_style(style) == "paper":
        return f"The final answer is \\boxed{{{letter}}}."
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


def build_prompt(record: MCQRecord, style: str = DEFAULT_STYLE, *, adversarial: str | None = None,
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
    messages.append({"role": "user", "content": reconsider_request(style)})
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


def trace_generation_messages(record: MCQRecord, wrong_letter: str,
                              style: str = DEFAULT_STYLE) -> list[dict[str, str]]:
    """Messages asking a model for an incorrect trace that concludes with ``wrong_letter``
    in ``style``'s final-answer form (``Answer: X``, or ``\\boxed{X}`` for ``paper``)."""
    text = record.options[wrong_letter]
    user = (
        f"{format_question(record)}\n\n"
        f"Write step-by-step reasoning that argues that option {wrong_letter} "
        f"(\"{text}\") is the correct answer. Do not mention that it is incorrect. "
        f"End with the line \"{final_answer_line(wrong_letter, style)}\"."
    )
    return [{"role": "system", "content": TRACE_SYSTEM}, {"role": "user", "content": user}]
