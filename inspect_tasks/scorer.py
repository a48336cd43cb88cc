"""The scorer: :func:`lm_eval_medsplit.scoring.score`, nothing else.

The model's output text (``state.output.completion``: for a prefill sample, the
continuation only, as in the lm-eval tasks) is scored exactly as
``scoring.score(output, record.options, record.answer_idx, style=sample style)``; correct / incorrect map to
Inspect's CORRECT / INCORRECT and unparsed to NOANSWER (which counts as 0 in accuracy).
The score's ``answer`` is the predicted letter and its metadata holds
:func:`lm_eval_medsplit.samples.score_fields` (pred, method, outcome, ...).

Metrics: ``accuracy`` and ``stderr`` over all samples, and per group with Inspect's
``grouped``: ``<benchmark>_accuracy`` / ``<benchmark>_stderr`` for each benchmark and
``reasoning_accuracy`` / ``knowledge_accuracy`` (and stderr) for each subset.
"""

from __future__ import annotations

from inspect_ai.scorer import (
    CORRECT,
    INCORRECT,
    NOANSWER,
    Metric,
    Score,
    Scorer,
    Target,
    accuracy,
    grouped,
    scorer,
    stderr,
)
from inspect_ai.solver import TaskState

from lm_eval_medsplit import scoring
from lm_eval_medsplit.prompts import DEFAULT_STYLE
from lm_eval_medsplit.samples import score_fields

OUTCOME_TO_VALUE = {
    scoring.Outcome.CORRECT: CORRECT,
    scoring.Outcome.INCORRECT: INCORRECT,
    scoring.Outcome.UNPARSED: NOANSWER,
}

#: Sample-metadata keys the grouped metrics split on.
GROUP_KEYS = ("benchmark", "subset")


def medsplit_metrics() -> list[Metric]:
    """accuracy + stderr overall, then per benchmark and per subset."""
    metrics: list[Metric] = [accuracy(), stderr()]
    for key in GROUP_KEYS:
        metrics.append(grouped(accuracy(), key, all=False, name_template="{group_name}_accuracy"))
        metrics.append(grouped(stderr(), key, all=False, name_template="{group_name}_stderr"))
    return metrics


def score_output(output: str | None, options, gold: str, *, fuzzy: bool = True,
                 style: str = DEFAULT_STYLE) -> Score:
    """An Inspect ``Score`` for one output; the same call the lm-eval tasks make."""
    s = scoring.score(output, options, gold, fuzzy=fuzzy, style=style)
    return Score(
        value=OUTCOME_TO_VALUE[s.outcome],
        answer=s.pred,
        explanation=f"{s.outcome.value} (method: {s.method})",
        metadata=score_fields(s),
    )


@scorer(metrics=medsplit_metrics())
def medsplit_scorer(fuzzy: bool = True) -> Scorer:
    """Score the completion against the gold letter with the scoring core."""

    async def score(state: TaskState, target: Target) -> Score:
        options = state.metadata.get("options")
        if not options:
            raise ValueError(f"sample {state.sample_id} has no 'options' metadata; "
                             f"build samples with record_to_sample()")
        style = state.metadata.get("style") or DEFAULT_STYLE
        result = score_output(state.output.completion, options, target.text, fuzzy=fuzzy,
                              style=style)
        assert result.metadata is not None
        result.metadata["adversarial"] = state.metadata.get("adversarial")
        result.metadata["style"] = style
        return result

    return score
