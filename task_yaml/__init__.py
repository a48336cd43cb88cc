"""lm-evaluation-harness task and group YAMLs of lm-eval-medsplit (installed as
``lm_eval_medsplit.task_yaml``).

The YAMLs are generated from the benchmark registry by ``_generate_configs.py`` in this
folder; the logic they call lives in :mod:`lm_eval_medsplit.lm_eval_tasks`. This module
holds the task naming (importable without lm-eval) and the folder path for
``--include_path`` / ``TaskManager(include_path=...)``.
"""

from __future__ import annotations

import os

#: This folder: pass it to ``lm_eval --include_path`` or ``TaskManager(include_path=...)``.
TASK_DIR = os.path.dirname(os.path.abspath(__file__))

MODES = ("cot", "adversarial", "mc")
SUBSETS = ("reasoning", "knowledge")
#: Name of the filter that scores generations; generative metric keys read ``acc,score``.
FILTER_NAME = "score"
#: Default generation budget of the generative tasks (``--gen_kwargs max_gen_toks=N``).
DEFAULT_MAX_GEN_TOKS = 4096
_SUFFIX = {"cot": "", "adversarial": "_adversarial", "mc": "_mc"}


def task_name(benchmark: str, subset: str, mode: str = "cot") -> str:
    """``medsplit_{b}_{subset}``, ``..._adversarial`` or ``..._mc`` (``b`` = registry
    short name)."""
    if mode not in _SUFFIX:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    return f"medsplit_{benchmark}_{subset}{_SUFFIX[mode]}"


def all_task_names(benchmarks=None, modes=MODES, subsets=SUBSETS) -> list[str]:
    """Task names for ``benchmarks`` (default: the whole registry)."""
    if benchmarks is None:
        from lm_eval_medsplit.registry import benchmark_names

        benchmarks = benchmark_names()
    return [task_name(b, s, m) for b in benchmarks for m in modes for s in subsets]
