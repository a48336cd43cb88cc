"""Test helper: a source directory in the hub layout, written from real raw records."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from lm_eval_medsplit.adversarial import add_offline_traces
from lm_eval_medsplit.registry import get_benchmark
from lm_eval_medsplit.sources import resolve_source, write_jsonl


def write_hub_dir(raw_dir: Path, out: Path, benchmarks: Iterable[str], *,
                  label: Callable[[list], None], revision: str, limit: int | None = None,
                  edit: Callable[[str, list], None] | None = None) -> Path:
    """``out/<config>/test.jsonl`` + ``out/manifest.json`` (the layout `medsplit build`
    writes, minus the classifier): the first ``limit`` raw records of each benchmark,
    labelled by ``label(records)`` (a deterministic stand-in for the classifier), given
    offline traces, then changed by ``edit(benchmark, records)`` if given."""
    src = resolve_source(raw_dir)
    for name in benchmarks:
        records, _ = src.load(name)
        records = records[:limit] if limit else records
        label(records)
        add_offline_traces(records)
        if edit:
            edit(name, records)
        write_jsonl(records, out / get_benchmark(name).config / "test.jsonl")
    (out / "manifest.json").write_text(json.dumps({"revision": revision}))
    return out
