"""The report's tables, defined once and rendered to rich (terminal), Markdown and HTML.

A :class:`TableSpec` is a title, column headers and a list of row cells (strings) built
from :class:`~lm_eval_medsplit.report.analysis.ReportData`; the renderers only lay them
out, so the three formats always show the same numbers.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lm_eval_medsplit.report.analysis import ReportData
from lm_eval_medsplit.report.sample_table import ALL, MACRO


@dataclass
class TableSpec:
    key: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str = ""
    right: set[int] = field(default_factory=set)
    """indices of right-aligned (numeric) columns"""
    sections: list[int] = field(default_factory=list)
    """row indices after which a separator is drawn"""

    def add_model_row(self, row: list[str]) -> None:
        """Append a row whose first cell is the model, drawing a separator between models."""
        if self.rows and self.rows[-1][0] != row[0]:
            self.sections.append(len(self.rows) - 1)
        self.rows.append(row)


def pct(x: float | None, nd: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{nd}f}"


def signed(x: float | None, nd: int = 1) -> str:
    return "–" if x is None else f"{100 * x:+.{nd}f}"


def with_ci(x: float | None, lo: float | None, hi: float | None, fmt: Callable = pct) -> str:
    if x is None:
        return "–"
    if lo is None or hi is None:
        return fmt(x)
    return f"{fmt(x)} [{fmt(lo)}, {fmt(hi)}]"


def pval(p: float | None) -> str:
    if p is None:
        return "–"
    if p < 1e-4:
        return f"{p:.1e}"
    return f"{p:.4f}" if p < 0.01 else f"{p:.3f}"


def bench_label(b: str) -> str:
    return {MACRO: "macro avg", ALL: "weighted avg"}.get(b, b)


# --------------------------------------------------------------------------- specs


def gap_table(d: ReportData) -> TableSpec:
    t = TableSpec("gaps", "Knowledge vs reasoning (clean runs)",
                  ["model", "benchmark", "n K", "knowledge acc % [95% CI]", "n R",
                   "reasoning acc % [95% CI]", "gap K−R (pp) [95% CI]", "parse %"],
                  caption="Accuracy counts unparsed outputs as wrong. Gap = knowledge − reasoning "
                          "accuracy in percentage points (positive: reasoning questions are harder). "
                          "Macro avg = mean over benchmarks; weighted avg = pooled over questions.",
                  right={2, 3, 4, 5, 6, 7})
    for r in d.gaps:
        t.add_model_row([r["model"], bench_label(r["benchmark"]), f"{r['knowledge_n']:,}",
                         with_ci(r["knowledge_accuracy"], r["knowledge_ci_low"], r["knowledge_ci_high"]),
                         f"{r['reasoning_n']:,}",
                         with_ci(r["reasoning_accuracy"], r["reasoning_ci_low"], r["reasoning_ci_high"]),
                         with_ci(r["gap"], r["gap_ci_low"], r["gap_ci_high"], signed),
                         pct(r["parse_rate"])])
    return t


def adversarial_table(d: ReportData) -> TableSpec:
    t = TableSpec("adversarial", "Adversarial robustness (incorrect reasoning traces)",
                  ["model", "benchmark", "mode", "clean %", "adversarial % [95% CI]", "per trace %",
                   "drop (pp) [95% CI]", "correct→wrong", "wrong→correct", "McNemar p (per trace)"],
                  caption="Adversarial accuracy averages each question over its traces; drop = clean − "
                          "adversarial on the questions in both runs. Flips are summed over traces; the "
                          "exact McNemar test is per trace (one adversarial sample per question).",
                  right={3, 4, 5, 6, 7, 8})
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in d.adversarial:
        groups.setdefault((r["model"], r["benchmark"], r["mode"]), []).append(r)
    for (model, bench, mode), rows in groups.items():
        mean = next(r for r in rows if r["trace"] == "mean")
        traces = [r for r in rows if r["trace"] != "mean"]
        per = " · ".join(f"t{r['trace']} {pct(r['accuracy'])}" for r in traces)
        ps = ", ".join(pval(r["mcnemar_p"]) for r in traces) if bench != MACRO else "–"
        t.add_model_row([model, bench_label(bench), mode, pct(mean["clean_accuracy"]),
                         with_ci(mean["accuracy"], mean["ci_low"], mean["ci_high"]), per,
                         with_ci(mean["drop"], mean["drop_ci_low"], mean["drop_ci_high"], signed),
                         "–" if mean["correct_to_wrong"] is None else f"{mean['correct_to_wrong']:,}",
                         "–" if mean["wrong_to_correct"] is None else f"{mean['wrong_to_correct']:,}",
                         ps])
    return t


def adversarial_subset_table(d: ReportData) -> TableSpec:
    t = TableSpec("adversarial_subsets", "Adversarial drop: reasoning vs knowledge questions",
                  ["model", "benchmark", "mode", "knowledge drop (pp) [95% CI]",
                   "reasoning drop (pp) [95% CI]", "R − K (pp) [95% CI]", "larger drop"],
                  caption="Per-question drop (clean − mean adversarial correctness) averaged on each "
                          "subset; R − K > 0 means reasoning questions lose more.",
                  right={3, 4, 5})
    for r in d.adversarial_subsets:
        t.add_model_row([r["model"], bench_label(r["benchmark"]), r["mode"],
                         with_ci(r["knowledge_drop"], r["knowledge_drop_ci_low"], r["knowledge_drop_ci_high"], signed),
                         with_ci(r["reasoning_drop"], r["reasoning_drop_ci_low"], r["reasoning_drop_ci_high"], signed),
                         with_ci(r["difference"], r["difference_ci_low"], r["difference_ci_high"], signed),
                         r["larger_drop"] or "–"])
    return t


def sweep_table(d: ReportData, every: float | None = None) -> TableSpec:
    t = TableSpec("threshold_sweep", "Gap vs reasoning_prob cut-off (clean, all benchmarks pooled)",
                  ["model", "cut-off", "n R (prob ≥ cut)", "reasoning %", "n K", "knowledge %",
                   "gap K−R (pp) [95% CI]"],
                  caption="Questions re-split at each cut-off of the classifier's reasoning_prob.",
                  right={1, 2, 3, 4, 5, 6})
    for r in d.threshold_sweep:
        if every and abs(round(r["threshold"] / every) * every - r["threshold"]) > 1e-9:
            continue
        t.add_model_row([r["model"], f"{r['threshold']:.2f}", f"{r['reasoning_n']:,}",
                         pct(r["reasoning_accuracy"]), f"{r['knowledge_n']:,}", pct(r["knowledge_accuracy"]),
                         with_ci(r["gap"], r["gap_ci_low"], r["gap_ci_high"], signed)])
    return t


def bins_table(d: ReportData) -> TableSpec:
    t = TableSpec("prob_bins", "Accuracy by reasoning_prob bin (clean, all benchmarks pooled)",
                  ["model", "reasoning_prob", "n", "accuracy % [95% CI]"], right={2, 3})
    for r in d.prob_bins:
        if r["benchmark"] != ALL:
            continue
        t.add_model_row([r["model"], f"[{r['bin_low']:.1f}, {r['bin_high']:.1f})", f"{r['n']:,}",
                         with_ci(r["accuracy"], r["ci_low"], r["ci_high"])])
    return t


def parse_table(d: ReportData) -> TableSpec:
    t = TableSpec("parse", "Answer extraction", ["model", "benchmark", "condition", "n",
                                                 "parse %", "unparsed", "methods"],
                  right={3, 4, 5})
    for r in d.parse:
        methods = ", ".join(f"{k} {v:,}" for k, v in sorted(r["methods"].items(), key=lambda kv: -kv[1]))
        t.add_model_row([r["model"], r["benchmark"], r["condition"], f"{r['n']:,}",
                         pct(r["parse_rate"]), f"{r['unparsed']:,}", methods])
    return t


def repeats_table(d: ReportData) -> TableSpec:
    t = TableSpec("repeats", "Repeated samples (clean): pass@1, maj@k, pass@k",
                  ["model", "benchmark", "subset", "questions", "k", "pass@1 % [95% CI]",
                   "maj@k % [95% CI]", "pass@k % [95% CI]"],
                  caption="k samples per question (lm-eval repeats, Inspect --epochs); pass@1 is the mean "
                          "share of correct samples, maj@k the majority answer (ties split), pass@k the "
                          "unbiased estimate; intervals resample questions.",
                  right={3, 4, 5, 6, 7})
    for r in d.repeats:
        t.add_model_row([r["model"], r["benchmark"], r["subset"], f"{r['questions']:,}", str(r["k"]),
                         *(with_ci(r[m], r[f"{m}_ci_low"], r[f"{m}_ci_high"]) for m in ("pass@1", "maj@k", "pass@k"))])
    return t


def runs_table(d: ReportData) -> TableSpec:
    t = TableSpec("runs", "Inputs", ["file", "harness", "model", "benchmarks", "samples",
                                     "revision", "status"], right={4})
    for r in d.runs:
        t.rows.append([r["file"], r["harness"], r["model"], r["benchmarks"], f"{r['samples']:,}",
                       str(r["revision"] or "–"), r["status"]])
    return t


def flagged_table(d: ReportData) -> TableSpec:
    t = TableSpec("flagged", "Flagged runs (another data revision; not merged)",
                  ["file", "model", "benchmark", "samples", "content hash", "reference hash",
                   "clean acc %", "reason"], right={3, 6})
    for r in d.flagged:
        t.rows.append([r["file"], r["model"], r["benchmark"], f"{r['samples']:,}",
                       (r["content_hash"] or "–")[:12], (r["reference_content_hash"] or "–")[:12],
                       pct(r["clean_accuracy"]), r["reason"]])
    return t


def all_tables(d: ReportData, *, terminal: bool = False) -> list[TableSpec]:
    specs = [gap_table(d)]
    if d.adversarial:
        specs += [adversarial_table(d), adversarial_subset_table(d)]
    if d.threshold_sweep:
        specs.append(sweep_table(d, every=0.1 if terminal else None))
    if d.prob_bins and not terminal:
        specs.append(bins_table(d))
    if d.repeats:
        specs.append(repeats_table(d))
    if not terminal:
        specs.append(parse_table(d))
    specs.append(runs_table(d))
    if d.flagged:
        specs.append(flagged_table(d))
    return [s for s in specs if s.rows]


# --------------------------------------------------------------------------- renderers


def to_rich(spec: TableSpec):
    from rich.table import Table

    t = Table(title=spec.title, caption=spec.caption or None, caption_justify="left")
    for i, c in enumerate(spec.columns):
        t.add_column(c, justify="right" if i in spec.right else "left", overflow="fold")
    for i, row in enumerate(spec.rows):
        t.add_row(*row, end_section=i in spec.sections)
    return t


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")


def md_escape(s: str) -> str:
    """Text shown literally by Markdown renderers: its special characters backslash-escaped
    (so ``<script>`` or ``[x](javascript:...)`` from a log stays text), ``&`` as ``&amp;``,
    line breaks as spaces."""
    s = str(s).replace("&", "&amp;").replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", s)


def to_markdown(spec: TableSpec) -> str:
    lines = [f"### {md_escape(spec.title)}", ""]
    if spec.caption:
        lines += [md_escape(spec.caption), ""]
    lines.append("| " + " | ".join(md_escape(c) for c in spec.columns) + " |")
    lines.append("|" + "|".join("---:" if i in spec.right else "---" for i in range(len(spec.columns))) + "|")
    for row in spec.rows:
        lines.append("| " + " | ".join(md_escape(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def to_html(spec: TableSpec) -> str:
    e = html.escape
    head = "".join(f'<th class="{"num" if i in spec.right else ""}">{e(c)}</th>'
                   for i, c in enumerate(spec.columns))
    body = []
    for i, row in enumerate(spec.rows):
        cls = ' class="sep"' if i in spec.sections else ""
        cells = "".join(f'<td class="{"num" if j in spec.right else ""}">{e(c)}</td>'
                        for j, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    cap = f"<caption>{e(spec.caption)}</caption>" if spec.caption else ""
    return (f'<table id="t-{e(spec.key)}">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def markdown_report(d: ReportData, *, title: str = "medsplit report") -> str:
    parts = [f"# {md_escape(title)}", ""]
    parts.append(f"{len(d.models)} model(s), {len(d.benchmarks)} benchmark(s), conditions: "
                 f"{', '.join(d.conditions)}. Intervals: {int(100 * d.settings.get('confidence', 0.95))}%, "
                 f"Wilson for accuracies, else bootstrap over questions "
                 f"({d.settings.get('bootstrap_replicates')} replicates, seed {d.settings.get('seed')}).\n")
    for spec in all_tables(d):
        parts.append(to_markdown(spec))
    if d.notes:
        parts.append("### Notes\n")
        parts += [f"- {md_escape(n)}" for n in d.notes]
        parts.append("")
    return "\n".join(parts)
