"""``medsplit report``: knowledge vs reasoning and adversarial robustness from lm-eval
and Inspect runs.

Pipeline: :mod:`.readers` (lm-eval output dirs, Inspect logs -> :class:`SampleRow`) ->
:mod:`.join` (back to the benchmark records; runs on another data revision flagged) ->
:mod:`.analysis` (every number, bootstrap intervals, McNemar) -> :mod:`.tables`
(rich / Markdown / HTML tables), :mod:`.plots` (PNG), :mod:`.html` (self-contained
page), :mod:`.export` (CSV / JSON, lm-eval-style results, Hugging Face ``.eval_results``).

Only numpy (and scipy's binomial cdf) is needed for the numbers; plots and HTML need the
``report`` extra (matplotlib, jinja2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval_medsplit.fileio import write_text
from lm_eval_medsplit.report.analysis import Analyser, ReportData
from lm_eval_medsplit.report.join import (
    JoinError,
    JoinResult,
    canonical_model,
    join_runs,
    normalise_models,
    rename_models,
)
from lm_eval_medsplit.report.read_common import InputError, ReadResult, prompt_style_of
from lm_eval_medsplit.report.readers import read_inputs
from lm_eval_medsplit.report.sample_table import SampleTable, benchmark_order
from lm_eval_medsplit.report.stats import DEFAULT_B, DEFAULT_SEED
from lm_eval_medsplit.samples import SampleRow

__all__ = ["Report", "build_report", "write_report", "InputError", "JoinError", "RenameError", "FORMATS"]

#: Output formats of :func:`write_report`.
FORMATS = ("md", "html", "png", "csv", "json", "lm-eval", "hf")
GALLERY_CHARS = 2000


@dataclass
class Report:
    data: ReportData
    joined: JoinResult
    read: ReadResult

    @property
    def n_samples(self) -> int:
        return len(self.joined.rows)


class RenameError(ValueError):
    """A ``--rename OLD=NEW`` whose OLD names no model of the inputs."""


def build_report(inputs: Iterable[str | Path], *, source: Any = None, revision: str | None = None,
                 rename: Mapping[str, str] | None = None, allow_partial: bool = False,
                 b: int = DEFAULT_B, seed: int = DEFAULT_SEED, gallery_per_model: int = 20) -> Report:
    """Read, join and analyse ``inputs`` (lm-eval output dirs / results files, Inspect logs)."""
    read = read_inputs(inputs, allow_partial=allow_partial)
    # the names before renaming, for the error; only looked at when there is a --rename
    names = sorted({r.model for run in read.runs for r in run.rows} | {run.model for run in read.runs}) \
        if rename else []
    # one model, one name: --rename OLD may give the logged or the normalised name
    raw = {run.model: canonical_model(run.model, run.harness) for run in read.runs}
    joined_notes = normalise_models(read.runs)
    if rename:
        rename = {raw.get(k, k) if k not in raw.values() else k: v for k, v in rename.items()}
    unknown = rename_models(read.runs, rename or {})
    if unknown:
        raise RenameError(f"--rename {', '.join(unknown)}: no model of that name in the inputs "
                          f"(they have: {', '.join(names)})")
    joined = join_runs(read.runs, source=source, revision=revision)
    models = list(dict.fromkeys(r.model for r in joined.rows))
    table = SampleTable.from_rows(joined.rows, models)
    data = Analyser(table, b=b, seed=seed).run()
    data.runs = joined.runs
    data.flagged = joined.flagged
    styled = [m for m in models if prompt_style_of(m) != "cot"]
    style_notes = [f"runs in another prompt style than cot are separate models, never averaged with "
                   f"cot runs: {', '.join(styled)}"] if styled else []
    data.notes = ([f"{p}: skipped: {why}" for p, why in read.skipped] + joined_notes + style_notes
                  + joined.notes + data.notes)
    data.provenance = _provenance(read, joined)
    data.settings["reference"] = joined.reference
    data.gallery = _gallery(joined, models, gallery_per_model)
    return Report(data, joined, read)


def _provenance(read: ReadResult, joined: JoinResult) -> dict[str, dict[str, Any]]:
    """benchmark -> what the exports must carry: dataset source, revision, content hash and
    the classifier that labelled the subsets (first accepted run that records each)."""
    out: dict[str, dict[str, Any]] = {}
    for run in read.runs:
        for bench, prov in run.provenance.items():
            entry = out.setdefault(bench, {})
            for k in ("source", "revision", "content_hash", "labels_from", "traces_from"):
                if prov.get(k) is not None:
                    entry.setdefault(k, prov[k])
    for bench, ref in joined.reference.items():
        entry = out.setdefault(bench, {})
        for k in ("content_hash", "revision"):
            if ref.get(k) is not None:
                entry[k] = ref[k]
    return out


def _gallery(joined: JoinResult, models: list[str], per_model: int) -> list[dict[str, Any]]:
    order = {b: i for i, b in enumerate(benchmark_order({r.benchmark for r in joined.rows}))}
    out = []
    for m in models:
        rows = [r for r in joined.rows if r.model == m]
        bad = [r for r in rows if r.outcome == "unparsed"]
        if not bad:
            continue
        # round-robin over (benchmark, condition) so the gallery shows every kind of failure
        groups: dict[tuple, list[SampleRow]] = {}
        for r in sorted((r for r in bad if r.output is not None),
                        key=lambda r: (order[r.benchmark], r.adversarial or "", r.trace_index or 0,
                                       _natural(r.id))):
            groups.setdefault((r.benchmark, r.adversarial), []).append(r)
        picked: list[SampleRow] = []
        queues = list(groups.values())
        while queues and len(picked) < per_model:
            for q in queues:
                if q and len(picked) < per_model:
                    picked.append(q.pop(0))
            queues = [q for q in queues if q]
        shown = []
        for r in picked:
            text = r.output or ""
            if len(text) > GALLERY_CHARS:
                text = text[:GALLERY_CHARS] + f"\n... [{len(r.output or '') - GALLERY_CHARS:,} more characters]"
            cond = "clean" if not r.adversarial else f"{r.adversarial} trace {r.trace_index}"
            shown.append({"benchmark": r.benchmark, "id": r.id, "condition": cond,
                          "method": r.method, "output": text})
        out.append({"model": m, "n": len(rows), "unparsed": len(bad), "shown": shown})
    return out


def _natural(s: str) -> tuple:
    """Sort key that orders ``"2"`` before ``"16"``."""
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s))


#: What :func:`write_report` writes under its folder; a new report removes an older
#: one's first, so no stale table, plot or export (a model card YAML!) is left beside it.
OUTPUT_NAMES = ("report.md", "report.json", "report.html", "csv", "plots", "lm_eval_results",
                "hf_eval_results")


def _clear_outputs(out: Path) -> None:
    import shutil

    for name in OUTPUT_NAMES:
        p = out / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def write_report(report: Report, out_dir: str | Path, *, formats: Iterable[str] = FORMATS,
                 title: str = "medsplit report", date: str | None = None) -> dict[str, list[Path]]:
    """Write the chosen formats under ``out_dir``; returns format -> files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    formats = set(formats)
    unknown = formats - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown format(s) {', '.join(sorted(unknown))}; choose from {', '.join(FORMATS)}")
    d = report.data
    _clear_outputs(out)
    written: dict[str, list[Path]] = {}
    if "md" in formats:
        from lm_eval_medsplit.report.tables import markdown_report

        p = out / "report.md"
        write_text(p, markdown_report(d, title=title))
        written["md"] = [p]
    if "csv" in formats or "json" in formats:
        from lm_eval_medsplit.report.export import write_tables

        paths = write_tables(d, out)
        for fmt, suffix in (("json", ".json"), ("csv", ".csv")):
            mine = [p for p in paths if p.suffix == suffix]
            if fmt in formats:
                written[fmt] = mine
            else:
                for p in mine:
                    p.unlink()
    plots: dict[str, bytes] = {}
    if "png" in formats or "html" in formats:
        from lm_eval_medsplit.report.plots import render_plots

        plots = render_plots(d, out / "plots" if "png" in formats else None)
        if "png" in formats:
            written["png"] = [out / "plots" / f"{k}.png" for k in plots]
    if "html" in formats:
        from lm_eval_medsplit.report.html import render_html, write_html

        text = render_html(d, plots, title=title, reference=report.joined.reference,
                           n_samples=report.n_samples)
        written["html"] = [write_html(out / "report.html", text)]
    if "lm-eval" in formats:
        from lm_eval_medsplit.report.export import write_lm_eval_results

        written["lm-eval"] = write_lm_eval_results(d, out / "lm_eval_results", reference=report.joined.reference,
                                                  rows=report.joined.rows)
    if "hf" in formats:
        from lm_eval_medsplit.report.export import write_hf_eval_results

        written["hf"] = write_hf_eval_results(d, out / "hf_eval_results", reference=report.joined.reference,
                                              date=date)
    return written
