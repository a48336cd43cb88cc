"""SFT and GRPO dataset rows from training records (steps 5 and 6: augment and render).

Accepts: records with a gold letter (and, for SFT, a ``reasoning`` column), the task
(``sft`` or ``grpo``), the :func:`~lm_eval_medsplit.train.selection.row_key` of the rows
to render in the adversarial ``prefill`` form, and a prompt format (``conversational``
messages, or ``text`` rendered with the model's tokenizer). Guarantees: prompts come from
the shared builder :func:`lm_eval_medsplit.prompts.build_prompt`, SFT targets end with the
final-answer line the scoring core reads in the row's style, and every row carries
:func:`lm_eval_medsplit.samples.sample_metadata`, the gold letter (``answer_idx``), the
option texts (``options``) and the ``style``, which GRPO passes to the reward functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lm_eval_medsplit.schema import MCQRecord
from lm_eval_medsplit.train.arguments import TASKS, TrainDataError
from lm_eval_medsplit.train.loading import reasoning_text
from lm_eval_medsplit.train.selection import row_key

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def sft_completion(record: MCQRecord, *, think_tags: bool = True, continuation: bool = False,
                   style: str = "cot") -> str:
    """The SFT target: the worked reasoning, then the final-answer line the scoring core
    reads in ``style``. ``continuation``: the text that continues an adversarial prefill
    (whose ``<think>`` is already open in the prompt)."""
    from lm_eval_medsplit.prompts import final_answer_line

    answer = final_answer_line(record.answer_idx, style)
    body = reasoning_text(record)
    if think_tags:
        if continuation:
            return f"\n{body}\n{THINK_CLOSE}\n\n{answer}"
        return f"{THINK_OPEN}\n{body}\n{THINK_CLOSE}\n\n{answer}"
    return f"\n\n{body}\n\n{answer}" if continuation else f"{body}\n\n{answer}"


def _messages(record: MCQRecord, *, style: str, adversarial: bool, think_tags: bool
              ) -> tuple[list[dict[str, str]], int | None]:
    from lm_eval_medsplit.prompts import build_prompt

    if not adversarial:
        return [dict(m) for m in build_prompt(record, style).messages], None
    p = build_prompt(record, style, adversarial="prefill", trace_index=_trace_index(record))
    messages = [dict(m) for m in p.messages]
    if think_tags:
        messages[-1]["content"] = f"{THINK_OPEN}\n{p.prefill}"
    return messages, p.trace_index


def _trace_index(record: MCQRecord) -> int:
    n = len(record.adversarial_traces)
    return int(record.content_hash(), 16) % n if n else 0


def render_prompt(messages: list[dict[str, str]], tokenizer, *, prefill: bool) -> str:
    """Chat messages as prompt text with the tokenizer's chat template: a generation
    prompt for a clean prompt, the open assistant turn for a prefill."""
    if tokenizer is None:
        raise TrainDataError("text prompts need the model's tokenizer")
    if prefill:
        return tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def build_rows(records: Sequence[MCQRecord], task: str, *,
               adversarial_ids: set[tuple[str, str]] = frozenset(),
               style: str = "cot", think_tags: bool = True, prompt_format: str = "conversational",
               tokenizer=None) -> list[dict[str, Any]]:
    """Dataset rows for ``task`` (``sft`` or ``grpo``). ``prompt_format`` is
    ``conversational`` (messages) or ``text`` (rendered with ``tokenizer``);
    ``adversarial_ids`` holds the :func:`row_key` of the rows given a prefill."""
    from lm_eval_medsplit.samples import sample_metadata

    if task not in TASKS:
        raise TrainDataError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if prompt_format == "conversational" and adversarial_ids:
        raise TrainDataError("adversarial prefill prompts continue an assistant turn, which TRL's "
                             "conversational prompts cannot express; use prompt_format text or auto")
    rows = []
    for r in records:
        adv = row_key(r) in adversarial_ids
        messages, trace_index = _messages(r, style=style, adversarial=adv, think_tags=think_tags)
        meta = sample_metadata(r, adversarial="prefill" if adv else None, trace_index=trace_index)
        row: dict[str, Any] = {}
        if prompt_format == "text":
            row["prompt"] = render_prompt(messages, tokenizer, prefill=adv)
        else:
            row["prompt"] = messages
        if task == "sft":
            completion = sft_completion(r, think_tags=think_tags, continuation=adv, style=style)
            row["completion"] = (completion if prompt_format == "text"
                                 else [{"role": "assistant", "content": completion}])
        row["answer_idx"] = r.answer_idx
        row["options"] = list(r.options.values())
        row["style"] = style  # the rewards score each completion in its row's style
        row.update(meta)
        rows.append(row)
    return rows
