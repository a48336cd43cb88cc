"""The self-contained HTML report: one file, inline CSS, plots embedded as base64
``data:`` URIs, no script and no external resource.

Accepts: :class:`~lm_eval_medsplit.report.analysis.ReportData` and PNG bytes. Guarantees:
every text from the logs is escaped (jinja2 autoescape); the file is written atomically."""

from __future__ import annotations

import base64
import datetime as _dt
from pathlib import Path
from typing import Any

from lm_eval_medsplit.fileio import write_text
from lm_eval_medsplit.report.analysis import ReportData
from lm_eval_medsplit.report.tables import all_tables, to_html

TEMPLATE = "report.html.j2"


def _env():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("lm_eval_medsplit.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_html(d: ReportData, plots: dict[str, bytes], *, title: str = "medsplit report",
                reference: dict[str, Any] | None = None, n_samples: int = 0,
                generated: str | None = None) -> str:
    from markupsafe import Markup

    from lm_eval_medsplit import __version__

    tables = {spec.key: Markup(to_html(spec)) for spec in all_tables(d)}
    for key in ("gaps", "adversarial", "adversarial_subsets", "threshold_sweep", "prob_bins",
                "repeats", "parse", "runs", "flagged"):
        tables.setdefault(key, "")
    plot_uris = {name: data_uri(png) for name, png in plots.items()}
    for key in ("knowledge_vs_reasoning", "gap_forest", "clean_vs_adversarial", "accuracy_vs_reasoning_prob"):
        plot_uris.setdefault(key, "")
    return _env().get_template(TEMPLATE).render(
        title=title, version=__version__,
        generated=generated or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        settings=d.settings, models=d.models, benchmarks=d.benchmarks, n_samples=n_samples,
        flagged=d.flagged, notes=d.notes, tables=tables, plots=plot_uris,
        has_adv=bool(d.adversarial), has_prob=bool(d.prob_bins), has_repeats=bool(d.repeats),
        gallery=d.gallery,
        reference=reference or {},
    )


def write_html(path: Path, text: str) -> Path:
    write_text(path, text)
    return path
