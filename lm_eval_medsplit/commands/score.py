"""``medsplit score``: re-score saved model outputs with the scoring core.

Accepts: a JSONL file, one model output per line (``output``, ``options``, optional
``answer_idx``; any other field is kept). Guarantees: every valid line is scored with
:func:`lm_eval_medsplit.scoring.extract_answer`; a bad line is named by file, line and
field (``--strict``: all of them and nothing written; lenient: skipped and counted on
stderr); ``--out`` is written atomically, or not at all."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval_medsplit.prompts import STYLES

MISSING = "(missing)"

EXAMPLE = """\
input: one JSON object per line with
  output      the model's text (required)
  options     dict letter -> text, or a list of option texts (required)
  answer_idx  the gold letter (optional; without it only parsing is reported)
every other field is copied to --out unchanged, with pred, method and correct added.

example:
  medsplit score runs/gpt4o.jsonl --out runs/gpt4o.scored.jsonl
  medsplit score runs/gpt4o.jsonl --json | jq .accuracy
  medsplit score runs/all_models.jsonl --group-by model   # one row per model

--group-by FIELD prints accuracy, parse rate and how each answer was read (the method
counts) per value of FIELD, e.g. per model, to check a new model's answers the way the
extractor was checked (docs/scoring.md). Lines without FIELD form the group "(missing)".
"""


def register(sub) -> None:
    p = sub.add_parser("score", help="re-score saved model outputs (JSONL)",
                       description="Re-score saved model outputs with the package's one answer "
                                   "extractor, the same one lm-eval, Inspect and TRL use.",
                       epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, help="JSONL file of outputs")
    p.add_argument("--out", type=Path, help="write each line back with pred, method, correct")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-fuzzy", action="store_true", help="turn fuzzy option-text matching off")
    p.add_argument("--group-by", metavar="FIELD",
                   help="also report accuracy, parse rate and method counts per value of this "
                        "field of each line (e.g. model)")
    p.add_argument("--style", choices=STYLES, default="cot",
                   help="scoring style: paper also reads \\boxed{} holding an option's text or "
                        "'X. text' the way the BioMed-R1 authors' pipeline does (default cot)")
    from lm_eval_medsplit.commands.common import add_strictness_args

    add_strictness_args(p, "line")
    p.set_defaults(func=cmd_score)


@dataclass
class ScoreSummary:
    n: int = 0
    n_gold: int = 0
    parsed: int = 0
    parsed_gold: int = 0
    correct: int = 0
    methods: Counter = field(default_factory=Counter)
    skipped: list = field(default_factory=list)
    """Problems of the lines skipped in lenient mode."""

    def add(self, letter: str | None, method: str, gold: str | None) -> bool | None:
        """Count one output; ``correct`` (``None`` without a gold letter)."""
        self.n += 1
        self.methods[method] += 1
        self.parsed += letter is not None
        if gold is None:
            return None
        self.n_gold += 1
        correct = letter == gold
        self.correct += correct
        self.parsed_gold += letter is not None
        return correct

    def as_dict(self) -> dict:
        def ratio(a, b):
            return a / b if b else None
        return {"n": self.n, "with_gold": self.n_gold, "parsed": self.parsed,
                "correct": self.correct,
                "accuracy": ratio(self.correct, self.n_gold),
                "parse_rate": ratio(self.parsed, self.n),
                "accuracy_when_parsed": ratio(self.correct, self.parsed_gold),
                "methods": dict(self.methods.most_common()),
                "skipped": len({(p.file, p.location) for p in self.skipped}),
                "skip_reasons": dict(Counter(f"{p.field}: {p.message.split(' (')[0][:60]}"
                                             for p in self.skipped).most_common())}


MAX_SHOWN = 20


class ScoreInputError(ValueError):
    """Every bad line of a scoring input, each naming file, line and field."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        if not problems:
            super().__init__("no line to score (the input is empty)")
            return
        shown = "\n".join(f"  - {p}" for p in problems[:MAX_SHOWN])
        more = f"\n  ... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
        super().__init__(f"{len(problems)} invalid line(s); the first: {problems[0]}"
                         + (f"\n{shown}{more}" if len(problems) > 1 else ""))


class GroupFieldError(ValueError):
    """The ``--group-by`` field is in no line of the input."""


def _check_line(row: dict, coerce_options) -> tuple[str, dict, str | None]:
    """``(output, options, gold)`` of one input line; RowError naming the bad field."""
    from lm_eval_medsplit.schema import RowError

    output = row.get("output")
    if not isinstance(output, str):
        raise RowError("output", "missing" if output is None else "expected a string")
    if "options" not in row:
        raise RowError("options", "missing")
    options = coerce_options(row["options"])  # raises RowError("options", ...)
    if len(options) < 2:
        raise RowError("options", f"needs at least 2 options, got {len(options)}")
    gold = row.get("answer_idx")
    if gold is not None:
        if not isinstance(gold, str):
            raise RowError("answer_idx", f"expected a letter, got {type(gold).__name__} {gold!r}")
        gold = gold.strip().upper()
        if gold not in options:
            raise RowError("answer_idx", f"{gold!r} is not one of {', '.join(options)}")
    return output, options, gold


def score_lines(path: Path, *, fuzzy: bool = True, out=None, style: str = "cot",
                group_by: str | None = None, groups: dict | None = None,
                strict: bool = True) -> ScoreSummary:
    """Score every line of ``path`` (writing each scored line to ``out`` when given).
    Strict: bad lines are all collected and raised together as :class:`ScoreInputError`
    at the end, so one run names every problem; a caller writing ``out`` then discards
    it. Lenient: bad lines are skipped and kept in ``summary.skipped``. A file without a
    valid line raises :class:`ScoreInputError` in both modes. With ``group_by``,
    ``groups`` (a dict) receives one :class:`ScoreSummary` per value of that field (lines
    without it under ``"(missing)"``)."""
    if group_by is not None and groups is None:
        groups = {}
    from lm_eval_medsplit.fileio import dumps_row
    from lm_eval_medsplit.schema import Problem, RowError, coerce_options, iter_json_objects
    from lm_eval_medsplit.scoring import Outcome, extract_answer

    summary = ScoreSummary()
    problems: list[str] = []
    first_fields: list[str] = []
    for loc, row in iter_json_objects(path):
        if not first_fields and isinstance(row, dict):
            first_fields = list(row)
        try:
            if isinstance(row, RowError):
                raise row
            output, options, gold = _check_line(row, coerce_options)
        except RowError as e:
            problems.append(Problem(str(path), loc, e.field, e.message))
            continue
        if problems and strict:  # the output is discarded anyway: only check the rest
            continue
        ex = extract_answer(output, options, fuzzy=fuzzy, style=style)
        correct = summary.add(ex.letter, ex.method, gold)
        if groups is not None:
            key = row.get(group_by, MISSING)
            key = MISSING if key is None else key if isinstance(key, str) else json.dumps(key)
            groups.setdefault(key, ScoreSummary()).add(ex.letter, ex.method, gold)
        if out is not None:
            row.update(pred=ex.letter, method=ex.method, correct=correct,
                       outcome=(Outcome.UNPARSED if ex.letter is None else
                                Outcome.CORRECT if correct else Outcome.INCORRECT).value
                       if gold is not None else None)
            out.write(dumps_row(row) + "\n")
    if (problems and strict) or summary.n == 0:
        raise ScoreInputError(problems)
    if group_by is not None and summary.n and set(groups) == {MISSING}:
        raise GroupFieldError(f"{path}: no line has the field {group_by!r} (--group-by); "
                              f"fields of the first line: {', '.join(first_fields)}")
    summary.skipped = problems
    return summary


def _group_table(field_name: str, groups: dict, pct):
    """A rich table: one row per group with accuracy, parse rate and the method counts."""
    from rich.table import Table

    t = Table(title=f"per {field_name}")
    t.add_column(field_name)
    for col in ("outputs", "accuracy", "parse rate", "acc. if parsed"):
        t.add_column(col, justify="right")
    t.add_column("methods")
    for name, g in groups.items():
        t.add_row(name, f"{g['n']:,}", pct(g["accuracy"]), pct(g["parse_rate"]),
                  pct(g["accuracy_when_parsed"]),
                  ", ".join(f"{k} {v:,}" for k, v in g["methods"].items()))
    return t


def cmd_score(args) -> int:
    from lm_eval_medsplit.cli import CLIError
    from lm_eval_medsplit.commands.common import check_io_files
    from lm_eval_medsplit.fileio import atomic_path

    check_io_files(args.file, args.out, "the scores")
    groups: dict[str, ScoreSummary] = {}
    kw = dict(fuzzy=not args.no_fuzzy, style=args.style, group_by=args.group_by, groups=groups,
              strict=args.strict)
    try:
        if args.out:
            with atomic_path(args.out) as tmp, open(tmp, "w", encoding="utf-8") as out:
                summary = score_lines(args.file, out=out, **kw)
        else:
            summary = score_lines(args.file, **kw)
    except (ScoreInputError, GroupFieldError) as e:
        raise CLIError(f"{e}" + (f"\nnothing written to {args.out}" if args.out else "")) from None
    from lm_eval_medsplit.commands.common import report_skips

    report_skips(summary.skipped, "line")
    d = summary.as_dict()
    if args.group_by:
        d["group_by"] = args.group_by
        d["groups"] = {k: groups[k].as_dict() for k in sorted(groups)}
    if args.json:
        print(json.dumps(d))
        return 0
    from lm_eval_medsplit.commands.common import console

    def pct(x):
        return "n/a" if x is None else f"{100 * x:.2f}%"
    c = console()
    c.print(f"{d['n']:,} outputs ({d['with_gold']:,} with gold)")
    c.print(f"accuracy            {pct(d['accuracy'])}")
    c.print(f"parse rate          {pct(d['parse_rate'])}")
    c.print(f"accuracy if parsed  {pct(d['accuracy_when_parsed'])}")
    c.print("methods: " + ", ".join(f"{k} {v:,}" for k, v in d["methods"].items()))
    if args.group_by:
        c.print(_group_table(args.group_by, d["groups"], pct))
    if args.out:
        c.print(f"wrote {args.out}")
    sys.stdout.flush()
    return 0
