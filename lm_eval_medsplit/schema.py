"""The canonical multiple-choice record, its validation and content hashes.

Every source loader produces :class:`MCQRecord` objects through :func:`build_records`,
which is the single place where rows are validated. Problems are collected as
:class:`Problem` (file, line or key, field, message); strict mode raises one
:class:`RecordValidationError` listing all of them, lenient mode skips the bad rows and
reports them in a :class:`LoadReport`. Nothing is dropped without being counted.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

#: Where some sources (MedXpertQA, MedMCQA's MedXpertQA copy) append the options to the
#: stem; records keep the stem only, options are rendered by the prompt builder.
ANSWER_CHOICES_RE = re.compile(r"\n\s*Answer Choices:", re.I)

#: Fields of the canonical record, in output order. Anything else read from a canonical
#: JSONL file is kept in :attr:`MCQRecord.extra` and written back untouched.
CANONICAL_FIELDS = (
    "id", "benchmark", "question", "options", "answer_idx", "answer",
    "reasoning_prob", "is_reasoning", "reasoning_threshold",
    "adversarial_traces", "adversarial_source", "meta",
)


@dataclass
class MCQRecord:
    """One multiple-choice question in canonical form."""

    id: str
    benchmark: str
    question: str
    options: dict[str, str]
    """Ordered letter -> option text, letters contiguous from ``A``."""
    answer_idx: str | None = None
    """Gold letter."""
    answer: str | None = None
    """Gold option text (equals ``options[answer_idx]`` when given)."""
    reasoning_prob: float | None = None
    is_reasoning: bool | None = None
    reasoning_threshold: float | None = None
    adversarial_traces: list[str] = field(default_factory=list)
    adversarial_source: str | None = None
    """How the traces were made (e.g. ``"offline-template"``, ``"model:<id>"``, ``"hub"``)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Source fields worth keeping (MedQA ``meta_info``, MedXpertQA ``question_type``...)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Unknown fields of a user's JSONL row, written back untouched."""

    @property
    def letters(self) -> list[str]:
        return list(self.options)

    @property
    def subset(self) -> str | None:
        """``"reasoning"``, ``"knowledge"`` or ``None`` when unlabelled."""
        if self.is_reasoning is None:
            return None
        return "reasoning" if self.is_reasoning else "knowledge"

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-able dict; ``extra`` fields are merged back at top level."""
        d: dict[str, Any] = {
            "id": self.id,
            "benchmark": self.benchmark,
            "question": self.question,
            "options": dict(self.options),
            "answer_idx": self.answer_idx,
            "answer": self.answer,
            "reasoning_prob": self.reasoning_prob,
            "is_reasoning": self.is_reasoning,
            "reasoning_threshold": self.reasoning_threshold,
            "adversarial_traces": list(self.adversarial_traces),
            "adversarial_source": self.adversarial_source,
            "meta": dict(self.meta),
        }
        for k, v in self.extra.items():
            d.setdefault(k, v)
        return d

    def content_hash(self) -> str:
        """sha256 of the question content (id, question, options, gold): labels and traces
        excluded, so labelling a record never changes it. Used for deterministic choices."""
        core = {"id": self.id, "question": self.question, "options": self.options,
                "answer_idx": self.answer_idx}
        return hashlib.sha256(canonical_json(core).encode("utf-8")).hexdigest()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def dataset_hash(records: Iterable[MCQRecord]) -> str:
    """Content hash of a benchmark: sha256 over the canonical JSON of every record (all
    fields, labels and traces included), records taken in id order so the hash does not
    depend on load order. Changing one character of one record changes it."""
    h = hashlib.sha256()
    for line in sorted(canonical_json(r.to_dict()) + "\n" for r in records):
        h.update(line.encode("utf-8"))
    return h.hexdigest()


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input row."""

    file: str
    location: str
    """``line 12``, ``key 21645374``, ``row 3``..."""
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.location}: field {self.field!r}: {self.message}"


class RecordValidationError(ValueError):
    """Raised in strict mode; lists every problem found in the input."""

    def __init__(self, problems: Sequence[Problem], limit: int = 50):
        self.problems = list(problems)
        if not self.problems:
            super().__init__("no valid row (the input is empty)")
            return
        shown = "\n".join(f"  - {p}" for p in self.problems[:limit])
        more = len(self.problems) - limit
        tail = f"\n  ... and {more} more" if more > 0 else ""
        # the first line names file, line and field on its own; the list follows
        head = f"{len(self.problems)} invalid row(s); the first: {self.problems[0]}"
        super().__init__(head if len(self.problems) == 1 else f"{head}\n{shown}{tail}")


class RowError(ValueError):
    """Raised by a loader's row conversion for one field of one row."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass
class LoadReport:
    """What loading one benchmark did: kept records, skipped rows and why, content hash."""

    benchmark: str
    source: str
    files: list[str] = field(default_factory=list)
    n_records: int = 0
    skipped: list[Problem] = field(default_factory=list)
    content_hash: str = ""
    revision: str | None = None

    @property
    def n_skipped(self) -> int:
        # one row can have several problems; count rows, not problems
        return len({(p.file, p.location) for p in self.skipped})

    def skip_reasons(self) -> Counter[str]:
        return Counter(f"{p.field}: {_reason_kind(p.message)}" for p in self.skipped)

    def as_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "source": self.source,
            "revision": self.revision,
            "files": self.files,
            "records": self.n_records,
            "skipped": self.n_skipped,
            "skip_reasons": dict(self.skip_reasons()),
            "content_hash": self.content_hash,
        }


def _reason_kind(message: str, width: int = 80) -> str:
    # group messages like "answer_idx 'Z' is not one of A, B, C, D" under their first words
    return message.split(" (")[0].split(":")[0][:width]


# --------------------------------------------------------------------------- coercion


def coerce_options(value: Any) -> dict[str, str]:
    """Options from a dict (letter -> text), a list (lettered A, B, ...) or a JSON string
    of either. Raises :class:`RowError` for anything else."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise RowError("options", f"not valid JSON ({e.msg})") from None
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for k, v in value.items():
            if v is None:
                continue  # hub rows padded with nulls for absent options
            out[str(k).strip().upper()] = _option_text(v, k)
        return dict(sorted(out.items(), key=lambda kv: (len(kv[0]), kv[0])))
    if isinstance(value, (list, tuple)):
        if len(value) > len(LETTERS):
            raise RowError("options", f"{len(value)} options; at most {len(LETTERS)} supported")
        return {LETTERS[i]: _option_text(v, LETTERS[i]) for i, v in enumerate(value)}
    raise RowError("options", f"expected a dict or a list, got {type(value).__name__}")


def _option_text(v: Any, letter: Any) -> str:
    """An option's text: a string, or a number written as text; ``None``, booleans and
    containers are refused (``str(None)`` would make an option called "None")."""
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    got = "null" if v is None else type(v).__name__
    raise RowError("options", f"option {letter} must be text, got {got}")


def _text_field(row: Mapping[str, Any], key: str) -> str:
    v = row[key]
    if not isinstance(v, str):
        raise RowError(key, f"expected a string, got {type(v).__name__} {str(v)[:40]!r}")
    return v


def _id_field(row: Mapping[str, Any]) -> str:
    v = row["id"]
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise RowError("id", f"expected a string or an integer, got {type(v).__name__} {str(v)[:40]!r}")


def _opt_float(row: Mapping[str, Any], key: str) -> float | None:
    v = row.get(key)
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise RowError(key, f"expected a number, got {v!r}") from None
    if math.isnan(f):
        return None
    if math.isinf(f):
        raise RowError(key, f"expected a finite number, got {v!r}")
    return f


def _opt_bool(row: Mapping[str, Any], key: str) -> bool | None:
    v = row.get(key)
    if v is None or v == "":
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false", "1", "0"):
        return v.strip().lower() in ("true", "1")
    raise RowError(key, f"expected a boolean, got {v!r}")


def traces_from_row(row: Mapping[str, Any]) -> list[str]:
    """Adversarial traces from either ``adversarial_traces`` (list) or the hub's
    ``adversarial_trace_0..N`` columns. Trace k stays at position k: an empty or null
    column in the middle is kept as ``""`` (asking for it is an error, see
    :func:`lm_eval_medsplit.prompts.get_trace`); trailing empty columns are dropped."""
    if row.get("adversarial_traces") is not None:
        traces = row["adversarial_traces"]
        if not isinstance(traces, list) or not all(isinstance(t, str) for t in traces):
            raise RowError("adversarial_traces", "expected a list of strings")
        return list(traces)
    out = []
    i = 0
    while f"adversarial_trace_{i}" in row:
        t = row[f"adversarial_trace_{i}"]
        out.append(str(t) if t else "")
        i += 1
    while out and not out[-1]:
        out.pop()
    return out


# a user's ``dataset_name`` is an unknown field, kept (the hub's goes to ``meta``)
_KNOWN_INPUT_KEYS = set(CANONICAL_FIELDS) | {"adversarial_trace_0", "adversarial_trace_1",
                                             "adversarial_trace_2"}


def record_from_row(row: Mapping[str, Any], benchmark: str, *, keep_extra: bool = False) -> MCQRecord:
    """Convert one row in canonical (or hub) shape into a record. Type problems raise
    :class:`RowError`; content problems are found later by :func:`validate_record`."""
    if not isinstance(row, Mapping):
        raise RowError("<row>", f"expected a JSON object, got {type(row).__name__}")
    for key in ("id", "question", "options"):
        if key not in row or row[key] is None:
            raise RowError(key, "missing")
    options = coerce_options(row["options"])
    ans = row.get("answer_idx")
    if ans is not None:
        if not isinstance(ans, str):
            raise RowError("answer_idx", f"expected a letter, got {type(ans).__name__} {ans!r}")
        ans = ans.strip().upper() or None
    meta = row.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise RowError("meta", "expected an object")
    extra = {k: v for k, v in row.items() if k not in _KNOWN_INPUT_KEYS and
             not k.startswith("adversarial_trace_")} if keep_extra else {}
    answer = row.get("answer")
    if isinstance(answer, (bool, list, dict)):
        raise RowError("answer", f"expected the gold option's text, got {type(answer).__name__}")
    return MCQRecord(
        id=_id_field(row),
        benchmark=str(row.get("benchmark") or benchmark),
        question=_text_field(row, "question"),
        options=options,
        answer_idx=ans,
        answer=None if answer is None else str(answer),
        reasoning_prob=_opt_float(row, "reasoning_prob"),
        is_reasoning=_opt_bool(row, "is_reasoning"),
        reasoning_threshold=_opt_float(row, "reasoning_threshold"),
        adversarial_traces=traces_from_row(row),
        adversarial_source=row.get("adversarial_source"),
        meta=dict(meta),
        extra=extra,
    )


def validate_record(rec: MCQRecord) -> list[tuple[str, str]]:
    """Content checks on one record: a list of (field, message), empty when valid."""
    errs: list[tuple[str, str]] = []
    if not rec.id.strip():
        errs.append(("id", "empty"))
    if not rec.question.strip():
        errs.append(("question", "empty"))
    letters = list(rec.options)
    if len(letters) < 2:
        errs.append(("options", f"needs at least 2 options, got {len(letters)}"))
    expected = list(LETTERS[: len(letters)])
    if letters != expected:
        errs.append(("options", f"letters must be contiguous from A; got {', '.join(letters)}"))
    empty = [k for k, v in rec.options.items() if not v.strip()]
    if empty:
        errs.append(("options", f"empty option text for {', '.join(empty)}"))
    if rec.answer_idx is not None and rec.answer_idx not in rec.options:
        errs.append(("answer_idx", f"{rec.answer_idx!r} is not one of {', '.join(letters)}"))
    elif rec.answer_idx is not None and rec.answer is not None:
        if rec.answer.strip() != rec.options[rec.answer_idx].strip():
            errs.append(("answer", f"does not match option {rec.answer_idx} "
                                   f"({rec.answer[:40]!r} vs {rec.options[rec.answer_idx][:40]!r})"))
    if rec.reasoning_prob is not None and not 0.0 <= rec.reasoning_prob <= 1.0:
        errs.append(("reasoning_prob", f"{rec.reasoning_prob} is outside [0, 1]"))
    return errs


def build_records(
    rows: Iterable[tuple[str, Any]],
    *,
    file: str,
    benchmark: str,
    report: LoadReport,
    convert=record_from_row,
    seen: dict[str, tuple[str, str]] | None = None,
) -> Iterator[MCQRecord]:
    """Turn ``(location, raw_row)`` pairs into valid records, recording every problem.

    ``raw_row`` may be a :class:`RowError` (e.g. a JSON line that did not parse): it is
    recorded as a problem. ``convert(raw_row, benchmark)`` maps a source row to a record.
    Duplicate ids within the benchmark are problems too (the later row is skipped); pass
    one ``seen`` dict (id -> (file, location)) to every call for a benchmark spread over
    several files, so duplicates across files are found as well.
    """
    seen = {} if seen is None else seen
    for location, raw in rows:
        if isinstance(raw, RowError):
            report.skipped.append(Problem(file, location, raw.field, raw.message))
            continue
        try:
            rec = convert(raw, benchmark)
        except RowError as e:
            report.skipped.append(Problem(file, location, e.field, e.message))
            continue
        errs = validate_record(rec)
        if rec.id in seen:
            first_file, first_loc = seen[rec.id]
            first = first_loc if first_file == file else f"{first_file}: {first_loc}"
            errs.append(("id", f"duplicate id {rec.id!r} (first at {first})"))
        if errs:
            report.skipped.extend(Problem(file, location, f, m) for f, m in errs)
            continue
        seen[rec.id] = (file, location)
        yield rec


def iter_jsonl(path, *, count_blank: bool = False) -> Iterator[tuple[str, Any]]:
    """``(\"line N\", obj)`` for each non-blank line; a line that is not JSON (syntax,
    NaN/Infinity, an integer over Python's digit limit, nesting too deep, a lone
    surrogate) yields a :class:`RowError` in place of the object so the caller can report
    it. With ``count_blank`` a blank line yields a :class:`RowError` too (a source whose
    rows are matched by position must count it, never shift). A file that is not UTF-8
    raises :class:`~lm_eval_medsplit.fileio.InputFileError` naming line and column."""
    from lm_eval_medsplit.fileio import JSONProblem, iter_lines, parse_json

    for i, line in iter_lines(path):
        if not line.strip():
            if count_blank:
                yield f"line {i}", RowError("<line>", "blank line")
            continue
        try:
            yield f"line {i}", parse_json(line)
        except JSONProblem as e:
            yield f"line {i}", RowError("<json>", f"broken JSON line at column {e.column}: {e.msg}")


def iter_json_objects(path) -> Iterator[tuple[str, Any]]:
    """Like :func:`iter_jsonl`, but a line holding anything other than a JSON object also
    yields a :class:`RowError` (field ``<row>``)."""
    for loc, row in iter_jsonl(path):
        if not isinstance(row, (dict, RowError)):
            row = RowError("<row>", f"expected a JSON object, got {type(row).__name__}")
        yield loc, row
