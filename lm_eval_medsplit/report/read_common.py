"""What every reader shares: the error type, the run and result containers, and the
helpers that turn one logged sample into a :class:`~lm_eval_medsplit.samples.SampleRow`.

Accepts: decoded log content (bytes, JSON values, a logged ``doc`` or sample metadata
mapping) handed over by :mod:`.read_lm_eval` and :mod:`.read_inspect`.

Guarantees: every unusable input raises :class:`InputError` naming the file (and the
caller adds the line or sample); a field that cannot become a :class:`SampleRow` raises a
``ValueError`` naming the field; nothing here reads files by itself or imports an
optional dependency.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_medsplit.prompts import DEFAULT_STYLE, STYLES
from lm_eval_medsplit.samples import SampleRow

LM_EVAL = "lm-eval"
INSPECT = "inspect"
_RESULTS_RE = re.compile(r"^results_(?P<date>.+)\.json$")
_OUTCOMES = ("correct", "incorrect", "unparsed")
#: Method of log-likelihood (``_mc``) samples; their model is reported as ``"<model> (loglikelihood)"``.
LOGLIKELIHOOD = "loglikelihood"
#: Prompt styles other than the default ``cot`` (:data:`lm_eval_medsplit.prompts.STYLES`).
OTHER_STYLES = tuple(s for s in STYLES if s != DEFAULT_STYLE)


class InputError(ValueError):
    """An input that cannot be read (unreadable, partial, not what it claims to be)."""

    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):  # raised in reader processes, re-raised here
        return (InputError, (self.path, self.message))


@dataclass
class Run:
    """The scored samples of one input file (an lm-eval results file with its sample
    files, or one Inspect log)."""

    path: str
    harness: str
    model: str
    tasks: list[str]
    rows: list[SampleRow]
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    """benchmark -> run provenance (``content_hash``, ``revision``, ``source``...)."""
    created: str | None = None
    notes: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


@dataclass
class ReadResult:
    runs: list[Run] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) of inputs that are not medsplit runs."""


# --------------------------------------------------------------------------- helpers


def _decode(data: bytes, path: Path, where: str = "") -> str:
    """UTF-8 text of ``data``, or an :class:`InputError` naming the encoding problem."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        hint = (" (it looks like UTF-16: re-save it as UTF-8)"
                if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:64] else "")
        raise InputError(path, f"{where}not UTF-8 text: byte 0x{data[e.start]:02x} at offset "
                               f"{e.start}{hint}") from None


def _loads(text: str, path: Path, where: str = "") -> Any:
    """``json.loads`` with one-line errors for invalid, too deeply nested or too large input."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(path, f"{where}not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); "
                               f"a partial write?") from None
    except RecursionError:
        raise InputError(path, f"{where}JSON nested too deeply") from None
    except ValueError as e:  # integers over sys.get_int_max_str_digits() digits
        raise InputError(path, f"{where}unreadable JSON value ({str(e).splitlines()[0][:120]})") from None


def _text(value: Any, name: str) -> str:
    """``str(value)``, refusing what cannot be written back as UTF-8 (lone surrogates)."""
    s = value if isinstance(value, str) else str(value)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"field {name!r} holds a lone surrogate (not valid Unicode)") from None
    return s


def _opt_text(value: Any, name: str) -> str | None:
    return None if value is None else _text(value, name)


def _safe_output(text: str | None) -> str | None:
    """Model output kept for the gallery, with lone surrogates replaced."""
    if text is None:
        return None
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def find_metadata(obj: Any, depth: int = 0) -> dict[str, Any] | None:
    """The :func:`sample_metadata` dict inside a logged doc (flat or nested)."""
    if not isinstance(obj, Mapping) or depth > 3:
        return None
    if "record_hash" in obj and "id" in obj and "benchmark" in obj:
        return dict(obj)
    for v in obj.values():
        if isinstance(v, Mapping):
            found = find_metadata(v, depth + 1)
            if found is not None:
                return found
    return None


_PROV_KEYS = ("content_hash", "revision", "source", "source_content_hash", "labels_from",
              "traces_from", "n_records", "package_version")


def find_provenance(obj: Any, default_benchmark: str | None = None,
                    out: dict[str, dict[str, Any]] | None = None, depth: int = 0) -> dict[str, dict[str, Any]]:
    """benchmark -> provenance, from every mapping with a ``content_hash`` found in
    ``obj`` (a ``benchmark`` key, or the nearest enclosing one, names the benchmark).
    ``{"content_hashes": {benchmark: hash}}`` maps are understood too."""
    out = {} if out is None else out
    if depth > 6:
        return out
    if isinstance(obj, list):
        for v in obj:
            find_provenance(v, default_benchmark, out, depth + 1)
        return out
    if not isinstance(obj, Mapping):
        return out
    bench = obj.get("benchmark") if isinstance(obj.get("benchmark"), str) else default_benchmark
    if isinstance(obj.get("content_hash"), str) and bench:
        entry = out.setdefault(bench, {})
        for k in _PROV_KEYS:
            if k in obj:
                entry.setdefault(k, obj[k])
    hashes = obj.get("content_hashes")
    if isinstance(hashes, Mapping):
        for b, h in hashes.items():
            if isinstance(h, str):
                entry = out.setdefault(str(b), {})
                entry.setdefault("content_hash", h)
                for k in ("revision", "source"):
                    if k in obj:
                        entry.setdefault(k, obj[k])
    for v in obj.values():
        if isinstance(v, (Mapping, list)):
            find_provenance(v, bench, out, depth + 1)
    return out


def _outcome_fields(*places: Any) -> dict[str, Any] | None:
    """pred / method / outcome from the first mapping that has an ``outcome``."""
    for p in places:
        if isinstance(p, dict):
            oc = p.get("outcome")
            if isinstance(oc, str) and oc in _OUTCOMES:
                return {"pred": p.get("pred"), "method": p.get("method"), "outcome": oc}
            for v in p.values():
                if type(v) is dict and v.get("outcome") in _OUTCOMES:
                    return {"pred": v.get("pred"), "method": v.get("method"), "outcome": v["outcome"]}
    return None


def _rescore(text: str | None, doc: Mapping[str, Any], target: Any) -> dict[str, Any] | None:
    from lm_eval_medsplit.schema import RowError, coerce_options
    from lm_eval_medsplit.scoring import score

    options = doc.get("options")
    gold = doc.get("answer_idx") or (target if isinstance(target, str) else None)
    if options is None or not gold:
        return None
    try:
        opts = coerce_options(options)
    except RowError:
        return None
    gold = str(gold).strip().upper()
    if gold not in opts:
        return None
    style = doc.get("style")
    s = score(text, opts, gold, style=style if style in STYLES else DEFAULT_STYLE)
    return {"pred": s.pred, "method": s.method, "outcome": s.outcome.value}


def _first_text(x: Any) -> str | None:
    while isinstance(x, list) and x:
        x = x[0]
    return x if isinstance(x, str) else None


def styled_model(model: str, style: Any) -> str:
    """The model name of a run in prompt style ``style``: unchanged for the default ``cot``
    (and for log-likelihood scoring, which has no style), ``"M (paper)"`` / ``"M (direct)"``
    otherwise, so runs made with different prompts are never averaged into one row."""
    return f"{model} ({style})" if style in OTHER_STYLES else model


def prompt_style_of(model: str) -> str:
    """The prompt style a row's model name says it was run in (see :func:`styled_model`)."""
    return next((s for s in OTHER_STYLES if model.endswith(f" ({s})")), DEFAULT_STYLE)


def _row(meta: Mapping[str, Any], *, model: str, harness: str, task: str,
         fields: Mapping[str, Any], output: str | None, keep_outputs: str,
         prov: Mapping[str, Any] | None, repeat: int | None = None,
         style: Any = None) -> SampleRow:
    """One :class:`SampleRow` (its model named after the run's prompt style, see
    :func:`styled_model`); a ``ValueError`` names the field that is unusable."""
    model = styled_model(model, style)
    adv = meta.get("adversarial") or None
    ti = meta.get("trace_index")
    prob = meta.get("reasoning_prob")
    keep = keep_outputs == "all" or (keep_outputs == "unparsed" and fields["outcome"] == "unparsed")
    subset = meta.get("subset")
    if subset is not None and not isinstance(subset, str):
        raise ValueError(f"field 'subset' is {type(subset).__name__}, expected a string")
    try:
        prob = None if prob is None else float(prob)
        ti = None if (ti is None or not adv) else int(ti)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("field 'reasoning_prob' or 'trace_index' is not a number") from None
    return SampleRow(
        model=model, harness=harness, task=task, benchmark=_text(meta["benchmark"], "benchmark"),
        id=_text(meta["id"], "id"), subset=_opt_text(subset, "subset"),
        reasoning_prob=prob,
        record_hash=_opt_text(meta.get("record_hash"), "record_hash"),
        adversarial=_opt_text(adv, "adversarial"),
        trace_index=ti,
        pred=_opt_text(fields.get("pred"), "pred"), method=_opt_text(fields.get("method"), "method"),
        outcome=fields["outcome"],
        output=_safe_output(output) if keep else None,
        content_hash=(prov or {}).get("content_hash") or meta.get("content_hash"),
        revision=(prov or {}).get("revision") or meta.get("revision"),
        repeat=repeat,
    )
