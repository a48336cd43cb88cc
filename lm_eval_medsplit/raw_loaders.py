"""One small loader per original file format, for a directory laid out like
``shared/data/raw`` (one folder per hub config holding the benchmark's original files).

Each loader yields ``(location, canonical_row)`` pairs (or a :class:`RowError` for a row
that cannot be read) and lets :func:`lm_eval_medsplit.schema.build_records` validate.
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from lm_eval_medsplit.registry import Benchmark
from lm_eval_medsplit.schema import (
    ANSWER_CHOICES_RE,
    LETTERS,
    LoadReport,
    MCQRecord,
    RowError,
    build_records,
    iter_jsonl,
)
from lm_eval_medsplit.sources import SourceError

Rows = Iterator[tuple[str, Any]]

_MEDMCQA_PREFIX = re.compile(r"^\s*\(?[A-D][.)]\s*")
PUBMEDQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}
PUBMEDQA_INSTRUCTION = ("Using the above document as a reference, please review the following "
                        "question and choose the option you find most appropriate.")


class RawFormatError(SourceError):
    """A raw file that cannot be read at all (missing, not JSON): names the file."""


def _need(d: Path, name: str) -> Path:
    p = d / name
    if not p.is_file():
        raise RawFormatError(f"{p}: missing (expected the original {name} of {d.name})")
    return p


def read_json(path: Path) -> Any:
    """A whole JSON file; an unreadable one is a :class:`RawFormatError` naming file,
    line and column."""
    from lm_eval_medsplit import fileio

    try:
        return fileio.read_json(path)
    except fileio.InputFileError as e:
        raise RawFormatError(str(e)) from None


def _get(row: Any, key: str) -> Any:
    if not isinstance(row, dict):
        raise RowError("<row>", f"expected a JSON object, got {type(row).__name__}")
    if key not in row or row[key] is None:
        raise RowError(key, "missing")
    return row[key]


def _numbered(rows: Rows) -> Iterator[tuple[str, Any, int]]:
    """``(location, row, n)``: ``n`` counts the file's rows from 0, blank lines excluded
    (a blank line is reported and counted by ``iter_jsonl(count_blank=True)``, never a
    shift of the rows after it)."""
    n = 0
    for loc, raw in rows:
        if isinstance(raw, RowError) and raw.field == "<line>":
            yield loc, raw, -1
            continue
        yield loc, raw, n
        n += 1


def _content_key(text: str) -> str:
    return " ".join(text.split()).lower()


def _mapped(rows: Rows, fn: Callable[[Any, str], dict]) -> Rows:
    """Apply a row mapping, turning its RowError into a reported row."""
    for loc, raw in rows:
        if isinstance(raw, RowError):
            yield loc, raw
            continue
        try:
            yield loc, fn(raw, loc)
        except RowError as e:
            yield loc, e


# --------------------------------------------------------------------------- formats


def _medqa(d: Path, **_) -> list[tuple[Path, Rows]]:
    """MedQA USMLE 4-option ``test.jsonl`` (MedAgentsBench copy with ``realidx``)."""
    path = _need(d, "test.jsonl")

    def row(r, loc):
        rid = r.get("realidx") if isinstance(r, dict) else None
        return {"id": str(rid if rid is not None else _get(r, "id")),
                "question": _get(r, "question"), "options": _get(r, "options"),
                "answer_idx": _get(r, "answer_idx"), "answer": r.get("answer"),
                "meta": {"meta_info": r.get("meta_info")}}
    return [(path, _mapped(iter_jsonl(path), row))]


def _medmcqa(d: Path, **_) -> list[tuple[Path, Rows]]:
    """MedMCQA validation: ``validation.jsonl`` (``choices`` list prefixed "A. ",
    ``answer`` int) joined with ``medmcqa_input.jsonl`` for ids and subjects when present.
    The join is on content (the stem and its lettered choices, as the input file writes
    them), never on line number: a blank or extra line shifts nothing. A question the
    input file does not hold gets an id from its content hash."""
    path = _need(d, "validation.jsonl")
    ids_path = d / "medmcqa_input.jsonl"
    side: dict[str, deque] = {}
    if ids_path.is_file():
        for _, r in iter_jsonl(ids_path):
            if isinstance(r, dict) and isinstance(r.get("question"), str) and r.get("id"):
                side.setdefault(_content_key(r["question"]), deque()).append(r)

    def row(r, loc):
        choices = _get(r, "choices")
        if not isinstance(choices, list):
            raise RowError("choices", "expected a list")
        ans = _get(r, "answer")
        if isinstance(ans, bool) or not isinstance(ans, int) or not 0 <= ans < len(choices):
            raise RowError("answer", f"expected an index 0..{len(choices) - 1}, got {ans!r}")
        question = _get(r, "question")
        if not isinstance(question, str):
            raise RowError("question", f"expected a string, got {type(question).__name__}")
        for k, c in enumerate(choices):
            if not isinstance(c, str):
                raise RowError("choices", f"choice {k} must be text, got "
                                          f"{'null' if c is None else type(c).__name__}")
        options = [_MEDMCQA_PREFIX.sub("", c, count=1) for c in choices]
        key = _content_key(question + "\nAnswer Choices: "
                           + " ".join(f"({LETTERS[k]}) {o}" for k, o in enumerate(options)))
        queue = side.get(key)
        info = queue.popleft() if queue else {}
        rid = info.get("id") or "medmcqa-" + hashlib.sha256(key.encode()).hexdigest()[:12]
        return {"id": str(rid), "question": question, "options": options,
                "answer_idx": LETTERS[ans],
                "meta": {k: info.get(k) for k in ("subject_name", "topic_name") if info.get(k)}}
    return [(path, _mapped(iter_jsonl(path, count_blank=True), row))]


def _pubmedqa(d: Path, *, pubmedqa_split: str = "all", **_) -> list[tuple[Path, Rows]]:
    """PubMedQA PQA-L ``ori_pqal.json`` (keyed by PMID). The question carries the
    abstract's contexts, as in the upstream evaluation sets; ``pubmedqa_split="test"``
    keeps the official 500 PMIDs of ``test_ground_truth.json``."""
    path = _need(d, "ori_pqal.json")
    data = read_json(path)
    if not isinstance(data, dict):
        raise RawFormatError(f"{path}: expected an object keyed by PMID")
    keys = list(data)
    if pubmedqa_split == "test":
        gt = read_json(_need(d, "test_ground_truth.json"))
        keys = [k for k in keys if k in gt]

    def rows() -> Rows:
        for k in keys:
            r = data[k]
            try:
                contexts = _get(r, "CONTEXTS")
                decision = str(_get(r, "final_decision")).strip().lower()
                letter = {v: k2 for k2, v in PUBMEDQA_OPTIONS.items()}.get(decision)
                if letter is None:
                    raise RowError("final_decision", f"expected yes/no/maybe, got {decision!r}")
                question = ("\n".join(map(str, contexts)) + "\n\n" + PUBMEDQA_INSTRUCTION
                            + "\n" + str(_get(r, "QUESTION")))
                yield f"key {k}", {"id": str(k), "question": question,
                                   "options": dict(PUBMEDQA_OPTIONS), "answer_idx": letter,
                                   "answer": decision,
                                   "meta": {"pmid": str(k), "year": r.get("YEAR"),
                                            "question_only": r.get("QUESTION")}}
            except RowError as e:
                yield f"key {k}", e
    return [(path, rows())]


def _medbullets(config: str):
    def load(d: Path, **_) -> list[tuple[Path, Rows]]:
        """MedBullets in the MedReason/m1 jsonl format (``question, options,
        answer_idx, answer``; ids are the row's index in the file, blank lines not
        counted: a blank line is skipped and reported, never a shift)."""
        path = _need(d, f"{config}.jsonl")

        def rows() -> Rows:
            for loc, r, i in _numbered(iter_jsonl(path, count_blank=True)):
                if isinstance(r, RowError):
                    yield loc, r
                    continue
                try:
                    yield loc, {"id": str(r.get("id", i)) if isinstance(r, dict) else str(i),
                                "question": _get(r, "question"), "options": _get(r, "options"),
                                "answer_idx": _get(r, "answer_idx"), "answer": r.get("answer")}
                except RowError as e:
                    yield loc, e
        return [(path, rows())]
    return load


def _medxpertqa(d: Path, **_) -> list[tuple[Path, Rows]]:
    """MedXpertQA Text: ``medxpertqa-r/test.jsonl`` (expert label Reasoning) and
    ``medxpertqa-u/test.jsonl`` (Understanding). ``meta.question_type`` keeps the label."""
    out = []
    for sub, qtype in (("medxpertqa-r", "Reasoning"), ("medxpertqa-u", "Understanding")):
        path = _need(d / sub, "test.jsonl")

        def row(r, loc, qtype=qtype):
            q = str(_get(r, "question"))
            m = ANSWER_CHOICES_RE.search(q)
            return {"id": str(_get(r, "realidx")), "question": q[: m.start()] if m else q,
                    "options": _get(r, "options"), "answer_idx": _get(r, "answer_idx"),
                    "answer": r.get("answer"), "meta": {"question_type": qtype}}
        out.append((path, _mapped(iter_jsonl(path), row)))
    return out


def _mmlu_pro(d: Path, **_) -> list[tuple[Path, Rows]]:
    """MMLU-Pro health + biology result files; the GPT-4o ``pred``/``response`` fields
    are model outputs, not benchmark content, and are ignored."""
    out = []
    for name in ("health_result.json", "biology_result.json"):
        path = _need(d, name)
        data = read_json(path)
        if not isinstance(data, list):
            raise RawFormatError(f"{path}: expected a JSON list of questions")

        def rows(data=data) -> Rows:
            for i, r in enumerate(data):
                loc = f"item {i}"
                try:
                    opts = _get(r, "options")
                    yield loc, {"id": str(_get(r, "question_id")), "question": _get(r, "question"),
                                "options": opts, "answer_idx": _get(r, "answer"),
                                "meta": {"category": r.get("category"), "src": r.get("src")}}
                except RowError as e:
                    yield loc, e
        out.append((path, rows()))
    return out


RAW_LOADERS: dict[str, Callable[..., list[tuple[Path, Rows]]]] = {
    "medqa": _medqa,
    "medmcqa": _medmcqa,
    "pubmedqa": _pubmedqa,
    "medbullets_op4": _medbullets("medbullets_op4"),
    "medbullets_op5": _medbullets("medbullets_op5"),
    "MedXpertQA": _medxpertqa,
    "mmlu_health_biology": _mmlu_pro,
}

_MARKERS = {
    "medqa": ["test.jsonl"], "medmcqa": ["validation.jsonl"], "pubmedqa": ["ori_pqal.json"],
    "medbullets_op4": ["medbullets_op4.jsonl"], "medbullets_op5": ["medbullets_op5.jsonl"],
    "MedXpertQA": ["medxpertqa-r/test.jsonl"], "mmlu_health_biology": ["health_result.json"],
}


def raw_files_present(d: Path, config: str) -> bool:
    return any((d / m).is_file() for m in _MARKERS.get(config, []))


def load_raw(root: Path, b: Benchmark, report: LoadReport, **options) -> list[MCQRecord]:
    """Load benchmark ``b`` from a raw directory, recording problems in ``report``."""
    if b.config not in RAW_LOADERS:
        raise RawFormatError(f"{b.config}: no raw copy can be loaded (licence: {b.redistribution}); "
                             f"use --source hub or a directory written by `medsplit build`")
    d = root / b.config
    if not d.is_dir():
        raise RawFormatError(f"{d}: missing folder for benchmark {b.name}")
    records: list[MCQRecord] = []
    seen: dict[str, tuple[str, str]] = {}  # ids across all files of the benchmark
    for path, rows in RAW_LOADERS[b.config](d, **options):
        report.files.append(str(path))
        records.extend(build_records(rows, file=str(path), benchmark=b.name, report=report,
                                     seen=seen))
    if b.config == "MedXpertQA":
        records.sort(key=lambda r: int(r.id.split("-")[-1]) if r.id.split("-")[-1].isdigit() else 0)
    return records
