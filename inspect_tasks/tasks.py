"""The ``@task`` functions: ``lm_eval_medsplit/medsplit``, ``medsplit_reasoning``,
``medsplit_knowledge`` and ``medsplit_adversarial``.

Task parameters (``-T name=value``):

- ``benchmarks``: comma list of short names (``medqa,pubmedqa``; hub config names work
  too), default ``all`` (every benchmark the source has);
- ``subset``: ``reasoning`` | ``knowledge`` | ``all``;
- ``style``: ``cot`` (reasoning, then ``Answer: X``) | ``direct`` | ``paper`` (the
  BioMed-R1 evaluation prompt: the question, then ``Please reason step by step, and put
  your final answer within \\boxed{}.``; scored on the ``\\boxed{}`` content);
- ``adversarial_mode``: ``reconsider`` | ``prefill`` (``medsplit_adversarial``; the other
  tasks are clean unless given one); prefill falls back to reconsider where the provider
  cannot continue an assistant turn (see :mod:`.solver`), ``force_prefill=true`` skips
  that rule;
- ``trace``: ``0`` | ``1`` | ``2`` | ``all`` (one sample per trace);
- ``source``: ``hub`` (default, or ``$MEDSPLIT_SOURCE``) or a path (hub-layout directory,
  raw directory like ``shared/data/raw``, canonical JSONL); ``revision`` for the hub;
- ``shuffle_seed``: shuffle the sample order.

Task metadata (in the log header) records the source, revision, prompt style,
per-benchmark content hashes and full provenance; each sample's metadata carries
:func:`lm_eval_medsplit.samples.sample_metadata` plus the eval set's content hash and
the style. ``--epochs k`` gives k samples per question: each keeps the question's sample
id (``benchmark/id[#tK]``) and metadata, and Inspect logs its ``epoch``.
"""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.model import GenerateConfig

from lm_eval_medsplit.dataset import flag_value

from .dataset import medsplit_dataset
from .scorer import medsplit_scorer
from .solver import medsplit_prompt

TASK_VERSION = 1
#: Same generation budget as the lm-eval tasks (``max_gen_toks``); ``--max-tokens``
#: overrides it. Decoding is left to the provider (``--temperature 0`` for API models,
#: ``-M do_sample=false`` for ``hf/``) since ``hf/`` samples by default.
MAX_TOKENS = 4096


def _mode(value: str | None) -> str | None:
    if value is None or str(value).strip().lower() in ("", "none", "clean", "false"):
        return None
    return str(value).strip().lower()


def _say_first(message: str) -> None:
    """Print the problem on stderr before Inspect prints its (long) traceback, so the first
    line the user sees names it; the exception is raised as well."""
    import sys

    print(f"lm_eval_medsplit: error: {message}", file=sys.stderr, flush=True)


def _param_hint(message: str) -> str | None:
    """The task parameter a validation message is about (``benchmarks``, ``subset``, ...)."""
    for name in ("subset", "style", "adversarial_mode", "trace", "benchmark", "source"):
        if message.startswith((f"{name} ", f"unknown {name}")):
            return {"benchmark": "benchmarks"}.get(name, name) + "=..."
    return None


def _build(*, benchmarks, subset, style, adversarial_mode, trace, source, revision,
           shuffle_seed, force_prefill, strict=False) -> Task:
    from lm_eval_medsplit.sources import HubUnavailableError

    try:
        ds = medsplit_dataset(benchmarks, subset, style=style, adversarial=_mode(adversarial_mode),
                              trace=trace, source=None if source is None else str(source),
                              revision=revision,
                              shuffle_seed=None if shuffle_seed is None else int(shuffle_seed),
                              strict=flag_value(strict))
    except HubUnavailableError as e:  # said in Inspect's syntax: -T source=DIR
        _say_first(str(e.for_tool("inspect")))
        raise e.for_tool("inspect") from None
    except ValueError as e:  # a bad -T value or source: one line before Inspect's traceback
        _say_first(f"-T {_param_hint(str(e))}: {e}" if _param_hint(str(e)) else str(e))
        raise
    return Task(
        dataset=ds.dataset,
        solver=medsplit_prompt(dataset_key=ds.key, force_prefill=flag_value(force_prefill)),
        scorer=medsplit_scorer(),
        config=GenerateConfig(max_tokens=MAX_TOKENS),
        metadata=ds.metadata,
        version=TASK_VERSION,
    )


@task
def medsplit(benchmarks: str | list[str] = "all", subset: str = "all", style: str = "cot",
             adversarial_mode: str | None = None, trace: int | str = 0,
             source: str | None = None, revision: str | None = None,
             shuffle_seed: int | None = None, force_prefill: bool = False,
             strict: bool = False) -> Task:
    """BioMed-R1-Eval multiple choice, any subset (clean unless ``adversarial_mode``)."""
    return _build(benchmarks=benchmarks, subset=subset, style=style,
                  adversarial_mode=adversarial_mode, trace=trace, source=source,
                  revision=revision, shuffle_seed=shuffle_seed, force_prefill=force_prefill,
                  strict=strict)


@task
def medsplit_reasoning(benchmarks: str | list[str] = "all", style: str = "cot",
                       adversarial_mode: str | None = None, trace: int | str = 0,
                       source: str | None = None, revision: str | None = None,
                       shuffle_seed: int | None = None, force_prefill: bool = False,
                       subset: str = "reasoning", strict: bool = False) -> Task:
    """The reasoning-heavy subset (records with ``is_reasoning``)."""
    return _build(benchmarks=benchmarks, subset=subset, style=style,
                  adversarial_mode=adversarial_mode, trace=trace, source=source,
                  revision=revision, shuffle_seed=shuffle_seed, force_prefill=force_prefill,
                  strict=strict)


@task
def medsplit_knowledge(benchmarks: str | list[str] = "all", style: str = "cot",
                       adversarial_mode: str | None = None, trace: int | str = 0,
                       source: str | None = None, revision: str | None = None,
                       shuffle_seed: int | None = None, force_prefill: bool = False,
                       subset: str = "knowledge", strict: bool = False) -> Task:
    """The knowledge-heavy subset (records with ``is_reasoning`` false)."""
    return _build(benchmarks=benchmarks, subset=subset, style=style,
                  adversarial_mode=adversarial_mode, trace=trace, source=source,
                  revision=revision, shuffle_seed=shuffle_seed, force_prefill=force_prefill,
                  strict=strict)


@task
def medsplit_adversarial(benchmarks: str | list[str] = "all", subset: str = "all",
                         style: str = "cot", adversarial_mode: str = "reconsider",
                         trace: int | str = 0, source: str | None = None,
                         revision: str | None = None, shuffle_seed: int | None = None,
                         force_prefill: bool = False, strict: bool = False) -> Task:
    """Robustness to an incorrect reasoning trace (``reconsider`` or ``prefill``)."""
    mode = _mode(adversarial_mode)
    if mode is None:
        raise ValueError("medsplit_adversarial needs adversarial_mode=reconsider or prefill")
    return _build(benchmarks=benchmarks, subset=subset, style=style, adversarial_mode=mode,
                  trace=trace, source=source, revision=revision, shuffle_seed=shuffle_seed,
                  force_prefill=force_prefill, strict=strict)
