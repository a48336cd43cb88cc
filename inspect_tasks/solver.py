"""The solver: the prompt module's messages, then one generation.

Samples already carry their input messages (built by
:func:`lm_eval_medsplit.prompts.build_prompt`). For adversarial samples:

- ``reconsider``: the trace is a finished assistant turn followed by a user request to
  reconsider; every provider can run it.
- ``prefill``: the input *ends* with the assistant message (trace + reconsider cue), and
  the provider must continue that message. The rule (:func:`prefill_support`):

  1. the model's Inspect provider must be one that continues a final assistant message:
     ``vllm`` and ``sglang`` (Inspect sends ``continue_final_message``) and
     ``anthropic`` (a final assistant turn is a prefill), except Anthropic with extended
     thinking, which rejects prefills. Every other provider (``hf``, ``openai``,
     ``openai-api``, ...) would open a *new* assistant turn after the trace, which is not
     a prefill;
  2. the trace must not contain ``<think>``/``</think>`` tags: chat templates such as
     DeepSeek-R1's drop everything before ``</think>`` from assistant turns, so the
     model would never see the trace.

  When either fails the sample is re-rendered in the ``reconsider`` form (same record,
  same trace) and its metadata records the mode actually used (``adversarial``), the
  mode asked for (``adversarial_requested``) and why (``adversarial_reason``).
  ``-T force_prefill=true`` skips the rule (e.g. an ``openai-api/`` server you know
  continues assistant messages).
"""

from __future__ import annotations

import re

from inspect_ai.model import get_model
from inspect_ai.solver import Generate, Solver, TaskState, solver

from lm_eval_medsplit.prompts import build_prompt

from .dataset import lookup_record
from .record_to_sample import to_chat_messages

#: Inspect model APIs that continue a final assistant message.
CONTINUATION_APIS = frozenset({"vllm", "sglang", "anthropic"})

_THINK_TAG = re.compile(r"</?\s*think(?:ing)?\s*>", re.I)


def model_api(model: object) -> str:
    """The provider part of a model name (``"hf"`` for ``hf/path/to/model``)."""
    api = getattr(model, "api", None)
    if api:
        return str(api)
    return str(model).split("/", 1)[0]


def prefill_support(model: object, trace: str, *, extended_thinking: bool = False,
                    force: bool = False) -> tuple[bool, str]:
    """Whether ``model`` can run the ``prefill`` form of ``trace``, and why (see module)."""
    if force:
        return True, "forced with force_prefill"
    api = model_api(model)
    if api not in CONTINUATION_APIS:
        return False, (f"provider {api!r} does not continue a final assistant message "
                       f"(continuing providers: {', '.join(sorted(CONTINUATION_APIS))})")
    if api == "anthropic" and extended_thinking:
        return False, "anthropic with extended thinking rejects a prefilled assistant turn"
    if _THINK_TAG.search(trace):
        return False, ("the trace contains <think> tags, which chat templates such as "
                       "DeepSeek-R1's drop from assistant turns")
    return True, f"provider {api!r} continues the assistant turn"


def _extended_thinking() -> bool:
    try:
        cfg = get_model().config
    except Exception:  # noqa: BLE001 - no active model outside an eval
        return False
    return bool(cfg.reasoning_tokens) or cfg.reasoning_effort not in (None, "none")


@solver
def medsplit_prompt(dataset_key: str | None = None, force_prefill: bool = False) -> Solver:
    """Generate from the sample's messages; apply the prefill rule to ``prefill`` samples.

    ``dataset_key`` names the records of the dataset (see
    :func:`lm_eval_medsplit.inspect_tasks.dataset.medsplit_dataset`), needed only to
    re-render a sample when ``prefill`` falls back to ``reconsider``.
    """

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        md = state.metadata
        if md.get("adversarial_requested") == "prefill":
            prefill = state.messages[-1]
            if prefill.role != "assistant":
                raise ValueError(f"sample {state.sample_id}: prefill input must end with the "
                                 f"assistant message, ends with {prefill.role}")
            ok, reason = prefill_support(state.model, prefill.text,
                                         extended_thinking=_extended_thinking(),
                                         force=force_prefill)
            md["adversarial_reason"] = reason
            if not ok:
                if dataset_key is None:
                    raise ValueError(f"sample {state.sample_id}: prefill is not supported "
                                     f"({reason}) and no dataset_key to re-render it")
                record = lookup_record(dataset_key, str(state.sample_id))
                prompt = build_prompt(record, md.get("style") or "cot", adversarial="reconsider",
                                      trace_index=md.get("trace_index") or 0)
                state.messages = to_chat_messages(prompt.messages)
                md["adversarial"] = "reconsider"
            else:
                md["adversarial"] = "prefill"
        return await generate(state)

    return solve
