"""Training data for the TRL entrypoint: load, select, decontaminate, augment, render.

Pipeline (:func:`prepare_training_data`):

1. **Load** ``zou-lab/BioMed-R1-Train`` (configs ``biomed_r1``, ``m23k_clean``; fields
   ``question, options`` (JSON string), ``answer_idx, answer, reasoning, reasoning_prob``)
   with ``datasets.load_dataset`` by hub id, or the same call on a local directory in the
   same layout (``DIR/<config>/train*.parquet|jsonl``), or read a canonical MCQ JSONL file
   through :func:`lm_eval_medsplit.sources.load_jsonl_records` (``reasoning`` optional).
   Every row goes through :func:`lm_eval_medsplit.schema.build_records`: invalid rows are
   skipped and counted, never silently dropped.
2. **Label** rows without ``reasoning_prob`` with the embedded classifier (only when the
   selection needs it).
3. **Decontaminate** against the evaluation source (default: the one in use,
   ``$MEDSPLIT_SOURCE`` or ``hub``): exact matches of the normalised question + options and
   near-duplicates (MinHash LSH candidates verified with ``rapidfuzz.fuzz.ratio``) are
   removed, with counts per benchmark.
4. **Select** reasoning-heavy rows (``reasoning_prob >= threshold``, the classifier's own
   ``is_reasoning`` rule), optionally mixed with a
   share of knowledge rows.
5. **Augment**: a deterministic share of rows is rendered in the adversarial ``prefill``
   form of :func:`lm_eval_medsplit.prompts.build_prompt`, so the policy continues an
   incorrect trace and must backtrack to the gold answer.
6. **Render** SFT prompt/completion rows or GRPO prompt rows. Every row carries
   :func:`lm_eval_medsplit.samples.sample_metadata` plus the gold letter (``answer_idx``) and
   the option texts (``options``), which GRPO passes to the reward functions as kwargs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lm_eval_medsplit import registry
from lm_eval_medsplit.schema import (
    LoadReport,
    MCQRecord,
    RecordValidationError,
    build_records,
    dataset_hash,
    record_from_row,
)

TRAIN_SPLIT = "train"
TASKS = ("sft", "grpo")
PROMPT_FORMATS = ("auto", "conversational", "text")
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
#: Files a local directory in the hub layout may hold for one config.
LOCAL_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")


class TrainDataError(ValueError):
    """A training source or setting that cannot be used; the message says why."""


# --------------------------------------------------------------------------- arguments


@dataclass
class MedsplitTrainArguments:
    """Data, selection, augmentation and reward settings of ``medsplit-train``.

    Parsed by ``TrlParser`` together with TRL's ``SFTConfig`` / ``GRPOConfig`` and
    ``ModelConfig``; every field can be set in the YAML ``--config`` file or on the
    command line.
    """

    dataset_source: str = field(
        default=registry.TRAIN_DATASET,
        metadata={"help": "hub id (default zou-lab/BioMed-R1-Train), a local directory in the same "
                          "layout (DIR/<config>/train*.parquet|jsonl), or a canonical MCQ JSONL file"})
    dataset_config: str = field(
        default="biomed_r1",
        metadata={"help": "config of the training set: biomed_r1 (reasoning-heavy release) or m23k_clean"})
    dataset_split: str = field(default=TRAIN_SPLIT, metadata={"help": "split to train on"})
    dataset_revision: str | None = field(default=None, metadata={"help": "hub revision of the training set (default: main, resolved to its "
                                  "commit sha, which the run records)"})
    dataset_strict: bool = field(default=False, metadata={
        "help": "fail on any invalid training row (default: skip it, count it, and warn with the reasons)"})
    reasoning_threshold: float | None = field(
        default=None,
        metadata={"help": "keep rows with reasoning_prob at or above this value, the classifier's is_reasoning "
                          "rule (none: keep all; "
                          "rows without reasoning_prob are labelled by the embedded classifier)"})
    knowledge_ratio: float = field(
        default=0.0,
        metadata={"help": "share of the final set drawn from knowledge rows (reasoning_prob < threshold), "
                          "in [0, 1); needs --reasoning_threshold"})
    max_train_samples: int | None = field(
        default=None, metadata={"help": "cap the final set (deterministic subset), e.g. for smoke runs"})
    decontaminate_against: str | None = field(
        default=None,
        metadata={"help": "evaluation source to decontaminate against: 'hub', a directory, a JSONL file, "
                          "or 'none' to skip; default the evaluation source in use ($MEDSPLIT_SOURCE or hub)"})
    decontaminate_benchmarks: str = field(
        default="all", metadata={"help": "comma-separated benchmarks to check (default: all the source has)"})
    near_duplicate_threshold: float = field(
        default=90.0,
        metadata={"help": "rapidfuzz ratio (0-100) at or above which a MinHash candidate is a near duplicate"})
    adversarial_share: float = field(
        default=0.0,
        metadata={"help": "share of rows (0-1) whose prompt starts with an incorrect trace (prefill form)"})
    prompt_style: str = field(default="cot", metadata={"help": "prompt style of the prompt builder: cot, direct or paper "
                                                           "(\\boxed{} answers, as in the BioMed-R1 evaluation)"})
    think_tags: bool = field(
        default=True,
        metadata={"help": "SFT targets are <think>reasoning</think> then 'Answer: X'; adversarial prefills open "
                          "<think> before the incorrect trace"})
    prompt_format: str = field(
        default="auto",
        metadata={"help": "conversational (chat messages, TRL applies the template), text (rendered with the "
                          "tokenizer's chat template here) or auto (text when there are adversarial prefills)"})
    selection_seed: int = field(default=0, metadata={"help": "seed of the deterministic mixing/augmentation choices"})
    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy", "format"],
        metadata={"help": "GRPO rewards: accuracy, format, overlong, or dotted paths (pkg.module.func)"})
    unparsed_penalty: float = field(
        default=0.0, metadata={"help": "accuracy reward of a completion whose answer cannot be read"})
    overlong_buffer: int = field(
        default=0,
        metadata={"help": "with the 'overlong' reward: soft punishment over the last N tokens before "
                          "max_completion_length (TRL get_soft_overlong_punishment)"})
    data_report: str | None = field(
        default=None,
        metadata={"help": "where to write the data report JSON (default OUTPUT_DIR/medsplit_data.json)"})

    def __post_init__(self):
        if self.prompt_format not in PROMPT_FORMATS:
            raise TrainDataError(f"prompt_format must be one of {', '.join(PROMPT_FORMATS)}, "
                                 f"got {self.prompt_format!r}")
        if not 0.0 <= self.adversarial_share <= 1.0:
            raise TrainDataError(f"adversarial_share must be in [0, 1], got {self.adversarial_share}")
        if not 0.0 <= self.knowledge_ratio < 1.0:
            raise TrainDataError(f"knowledge_ratio must be in [0, 1), got {self.knowledge_ratio}")
        if self.knowledge_ratio > 0 and self.reasoning_threshold is None:
            raise TrainDataError("knowledge_ratio needs --reasoning_threshold (what counts as knowledge)")
        # "accuracy,format", "accuracy format" or a list of either (argparse gives a list)
        names = [self.reward_funcs] if isinstance(self.reward_funcs, str) else list(self.reward_funcs)
        self.reward_funcs = [x for n in names for x in re.split(r"[,\s]+", str(n)) if x]
        from lm_eval_medsplit.train.rewards import SHORT_NAMES, resolve_reward

        for name in self.reward_funcs:  # checked now, not after the data pipeline has run
            if name not in SHORT_NAMES:
                try:
                    resolve_reward(name)
                except (ValueError, ImportError, AttributeError) as e:
                    raise TrainDataError(f"--reward_funcs {name!r}: {e}") from None


# --------------------------------------------------------------------------- loading


def train_row_to_record(row: dict[str, Any], benchmark: str) -> MCQRecord:
    """One BioMed-R1-Train row (``options`` as JSON string) as a record; ``reasoning`` and
    any other column stay in :attr:`MCQRecord.extra`. A ``meta`` column holding a JSON
    string (what ``medsplit build`` writes, so its output trains GRPO) is parsed back."""
    meta = row.get("meta")
    if isinstance(meta, str):
        from lm_eval_medsplit.schema import RowError

        try:
            row = {**row, "meta": json.loads(meta) if meta.strip() else {}}
        except json.JSONDecodeError as e:
            raise RowError("meta", f"not valid JSON ({e.msg})") from None
    return record_from_row(row, benchmark, keep_extra=True)


def _with_ids(rows: Iterable[dict[str, Any]], prefix: str):
    for i, row in enumerate(rows):
        if isinstance(row, dict) and row.get("id") in (None, ""):
            row = {**row, "id": f"{prefix}-{i:06d}"}
        yield f"row {i}", row


def load_train_records(source: str = registry.TRAIN_DATASET, config: str = "biomed_r1", *,
                       split: str = TRAIN_SPLIT, revision: str | None = None,
                       strict: bool = False) -> tuple[list[MCQRecord], LoadReport]:
    """Load the training rows of ``source`` (hub id, local directory in the hub layout, or
    canonical MCQ JSONL) as validated records. Rows without an ``id`` get ``<config>-<row>``."""
    path = Path(os.path.expanduser(str(source)))
    if path.is_file():
        if path.suffix not in (".jsonl", ".json"):
            raise TrainDataError(f"{path}: a training file must be canonical MCQ JSONL (.jsonl)")
        from lm_eval_medsplit.sources import load_jsonl_records

        return load_jsonl_records(path, strict=strict)
    import datasets

    if path.is_dir():
        name = f"{path.resolve()}:{config}"
        sub = path / config
        if sub.is_dir():
            files = sorted(str(p) for p in sub.rglob("*") if p.suffix in LOCAL_SUFFIXES
                           and p.name.startswith(split))
            if not files:
                raise TrainDataError(f"{sub}: no {split}*.parquet / .jsonl file for config {config!r}")
            ds = datasets.load_dataset(str(path), data_dir=config, split=split)
        else:
            try:  # a local snapshot whose README declares the configs
                ds = datasets.load_dataset(str(path), config, split=split)
            except (ValueError, FileNotFoundError) as e:
                raise TrainDataError(f"{path}: no folder {config!r} and no config {config!r} "
                                     f"({e})") from None
    else:
        if str(source) != registry.TRAIN_DATASET and "/" not in str(source):
            raise TrainDataError(f"training source {source!r} is neither a hub id, a directory nor "
                                 f"a JSONL file")
        from lm_eval_medsplit.sources import resolve_hub_revision

        revision = resolve_hub_revision(str(source), revision or "main")
        try:
            ds = datasets.load_dataset(str(source), config, split=split, revision=revision)
        except Exception as e:  # noqa: BLE001 - offline, unknown id or config: say which and why
            raise TrainDataError(
                f"cannot load {source} (config {config!r}, split {split!r}) from the hub: "
                f"{type(e).__name__}: {e}. Without hub access, pass --dataset_source DIR (a local "
                f"copy in the same layout, DIR/{config}/{split}*.parquet) or an MCQ JSONL file") from e
        name = f"{source}:{config}" + (f"@{revision}" if revision else "")
    report = LoadReport(benchmark=config, source=str(source), revision=revision)
    report.files.append(name)
    records = list(build_records(_with_ids(ds, config), file=name, benchmark=config,
                                 report=report, convert=train_row_to_record))
    report.n_records = len(records)
    report.content_hash = dataset_hash(records)
    if strict and report.skipped:
        raise RecordValidationError(report.skipped)
    return records, report


def reasoning_text(record: MCQRecord) -> str:
    """The record's worked reasoning (``reasoning`` column), stripped; ``""`` when absent."""
    value = record.extra.get("reasoning")
    return value.strip() if isinstance(value, str) else ""


def ensure_reasoning_probs(records: list[MCQRecord], threshold: float | None = None) -> str:
    """Label rows without ``reasoning_prob`` with the embedded classifier (``is_reasoning``
    at ``threshold``, default the classifier's own). Returns where the probabilities came
    from (``source`` or ``classifier:<name>@<sha12>``)."""
    missing = [r for r in records if r.reasoning_prob is None]
    if not missing:
        return "source"
    try:
        from lm_eval_medsplit.classifier import classifier_identity, label_records

        label_records(missing, threshold=threshold)
        ident = classifier_identity()
    except (ImportError, FileNotFoundError) as e:
        raise TrainDataError(f"{len(missing)} row(s) have no reasoning_prob and the embedded "
                             f"classifier is not available ({e})") from None
    still = [r.id for r in missing if r.reasoning_prob is None]
    if still:
        raise TrainDataError(f"the classifier left {len(still)} row(s) without reasoning_prob "
                             f"(e.g. {still[0]!r})")
    who = f"classifier:{ident.get('name')}@{str(ident.get('sha256', ''))[:12]}"
    if len(missing) < len(records):  # the others kept the source's probabilities
        return f"source ({len(records) - len(missing)} rows) + {who} ({len(missing)} rows)"
    return who


# --------------------------------------------------------------------------- selection


def _rank(record: MCQRecord, seed: int, salt: str) -> str:
    return hashlib.sha256(f"{seed}:{salt}:{record.content_hash()}".encode()).hexdigest()


def select_reasoning(records: Sequence[MCQRecord], threshold: float | None, *,
                     knowledge_ratio: float = 0.0, seed: int = 0) -> tuple[list[MCQRecord], dict[str, Any]]:
    """Rows with ``reasoning_prob`` at or above ``threshold`` (all rows when ``None``; the
    same rule as the classifier's ``is_reasoning``),
    plus knowledge rows so that they make up ``knowledge_ratio`` of the result (as many as
    there are when too few). Knowledge rows are chosen deterministically from ``seed``.
    Input order is kept. Every row's ``is_reasoning`` / ``reasoning_threshold`` is set from
    the threshold in use, so the rows say what the selection did.
    """
    if threshold is None:
        return list(records), {"threshold": None, "reasoning": len(records), "knowledge": 0,
                               "available_knowledge": 0}
    missing = [r.id for r in records if r.reasoning_prob is None]
    if missing:
        raise TrainDataError(f"{len(missing)} row(s) have no reasoning_prob (e.g. {missing[0]!r})")
    for r in records:  # a source label made at another threshold would contradict the selection
        r.is_reasoning = r.reasoning_prob >= threshold
        r.reasoning_threshold = threshold
    reasoning = [r for r in records if r.reasoning_prob >= threshold]
    knowledge = [r for r in records if r.reasoning_prob < threshold]
    n_k = 0
    if knowledge_ratio > 0 and knowledge:
        n_k = min(len(knowledge), round(len(reasoning) * knowledge_ratio / (1.0 - knowledge_ratio)))
    chosen = {id(r) for r in sorted(knowledge, key=lambda r: _rank(r, seed, "knowledge"))[:n_k]}
    out = [r for r in records if r.reasoning_prob >= threshold or id(r) in chosen]
    return out, {"threshold": threshold, "reasoning": len(reasoning), "knowledge": n_k,
                 "available_knowledge": len(knowledge)}


def cap(records: Sequence[MCQRecord], n: int | None, *, seed: int = 0,
        stratum: Callable[[MCQRecord], Any] | None = None) -> list[MCQRecord]:
    """A deterministic subset of ``n`` rows (input order kept). With ``stratum`` (e.g.
    reasoning vs knowledge), each stratum keeps its share of the rows (largest remainder),
    so a cap does not change the mix that selection made."""
    if n is None or n >= len(records):
        return list(records)
    groups: dict[Any, list[MCQRecord]] = {}
    for r in records:
        groups.setdefault(stratum(r) if stratum else None, []).append(r)
    quota = {k: n * len(v) / len(records) for k, v in groups.items()}
    take = {k: int(q) for k, q in quota.items()}
    for k in sorted(quota, key=lambda k: (quota[k] - take[k], str(k)), reverse=True)[:n - sum(take.values())]:
        take[k] += 1
    keep = set()
    for k, v in groups.items():
        keep.update(id(r) for r in sorted(v, key=lambda r: _rank(r, seed, "cap"))[:take[k]])
    return [r for r in records if id(r) in keep]


def row_key(record: MCQRecord) -> tuple[str, str]:
    """``(benchmark, id)``: ids are unique within a benchmark only (a JSONL file may mix)."""
    return record.benchmark, record.id


def choose_adversarial(records: Sequence[MCQRecord], share: float, *, seed: int = 0
                       ) -> set[tuple[str, str]]:
    """Keys (:func:`row_key`) of the ``round(share * n)`` rows rendered with an
    adversarial prefill, chosen deterministically from ``seed``."""
    n = round(share * len(records))
    ranked = sorted(records, key=lambda r: _rank(r, seed, "adversarial"))
    return {row_key(r) for r in ranked[:n]}


# --------------------------------------------------------------------------- decontamination

_NON_WORD = re.compile(r"[\W_]+")


def normalise_text(text: str) -> str:
    """Lower-case words of ``text`` (NFKC, punctuation and spacing collapsed)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return _NON_WORD.sub(" ", text.lower()).strip()


def match_text(record: MCQRecord) -> str:
    """What decontamination compares: the question and its option texts (sorted, so a
    reshuffled copy still matches), normalised."""
    question, opts = match_parts(record)
    return f"{question} || {opts}"


def match_parts(record: MCQRecord) -> tuple[str, str]:
    """(question, options) of :func:`match_text`."""
    return (normalise_text(record.question),
            " | ".join(sorted(normalise_text(v) for v in record.options.values())))


#: A shorter question inside a longer one with the same options is a duplicate when it
#: holds at least this share of the longer one's characters (a copy with a sentence
#: added or cut) and at least ``CONTAINED_MIN_CHARS`` characters.
CONTAINED_MIN_SHARE = 0.5
CONTAINED_MIN_CHARS = 40
#: Options shared by more eval questions than this (yes / no / maybe) are not used to
#: find containment candidates; the MinHash candidates still are.
OPTION_BUCKET_MAX = 256


def _contained(a: str, b: str) -> bool:
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    return (len(short) >= CONTAINED_MIN_CHARS and len(short) >= CONTAINED_MIN_SHARE * len(long_)
            and short in long_)




#: Character shingle length. Measured on 1,200 near duplicates (ratio >= 90, made by
#: transposing letters in 10-50% of the words of real questions): 5-byte shingles with
#: 128 permutations in 32 bands find 98.8% of them as candidates (word bigrams: 82.6%).
SHINGLE_CHARS = 5


class MinHashLSH:
    """MinHash signatures of character shingles with banded LSH (numpy only)."""

    def __init__(self, num_perm: int = 128, bands: int = 32, seed: int = 1):
        import numpy as np

        if num_perm % bands:
            raise ValueError("num_perm must be a multiple of bands")
        self.num_perm, self.bands, self.rows = num_perm, bands, num_perm // bands
        rng = np.random.default_rng(seed)
        self._a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
        self._b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self._buckets: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]

    @staticmethod
    def shingles(text: str, k: int = SHINGLE_CHARS):
        """The distinct ``k``-byte shingles of ``text`` (UTF-8), each packed into an
        integer; the whole text's crc32 when it is shorter than ``k`` bytes."""
        import numpy as np

        data = text.encode("utf-8")
        if len(data) < k:
            return np.asarray([zlib.crc32(data)], dtype=np.uint64)
        b = np.frombuffer(data, dtype=np.uint8).astype(np.uint64)
        n = len(b) - k + 1
        x = np.zeros(n, dtype=np.uint64)
        for i in range(k):
            x |= b[i:n + i] << np.uint64(8 * i)
        return np.unique(x)

    def signature(self, text: str):
        import numpy as np

        x = self.shingles(text)[:, None]
        # multiply-shift hashing: the top 32 bits of (a * x + b) mod 2**64 (wraps in uint64)
        h = (self._a[None, :] * x + self._b[None, :]) >> np.uint64(32)
        return h.min(axis=0)

    def _keys(self, sig) -> list[bytes]:
        r = self.rows
        return [sig[i * r:(i + 1) * r].tobytes() for i in range(self.bands)]

    def add(self, idx: int, text: str) -> None:
        for band, key in zip(self._buckets, self._keys(self.signature(text))):
            band.setdefault(key, []).append(idx)

    def query(self, text: str) -> set[int]:
        out: set[int] = set()
        for band, key in zip(self._buckets, self._keys(self.signature(text))):
            hit = band.get(key)
            if hit:
                out.update(hit)
        return out


@dataclass
class Match:
    train_id: str
    benchmark: str
    eval_id: str
    kind: str
    """``exact`` or ``near``."""
    similarity: float
    """rapidfuzz ratio (0-100) of the two match texts; 100 for exact matches."""
    train_benchmark: str = ""
    """The training row's benchmark (ids are unique within one only)."""


@dataclass
class DecontaminationReport:
    against: dict[str, Any] | None
    benchmarks: list[str] = field(default_factory=list)
    eval_records: dict[str, int] = field(default_factory=dict)
    near_threshold: float = 90.0
    n_checked: int = 0
    matches: list[Match] = field(default_factory=list)

    @property
    def removed_keys(self) -> set[tuple[str, str]]:
        """:func:`row_key` of every removed training row."""
        return {(m.train_benchmark, m.train_id) for m in self.matches}

    @property
    def n_removed(self) -> int:
        return len(self.removed_keys)

    def per_benchmark(self) -> dict[str, dict[str, int]]:
        """``{benchmark: {"exact": n, "near": n}}``: training rows removed for each
        benchmark (a row matching two benchmarks counts under both)."""
        out: dict[str, Counter] = {b: Counter() for b in self.benchmarks}
        seen: set[tuple[str, str, str]] = set()
        for m in self.matches:
            if (m.train_benchmark, m.train_id, m.benchmark) in seen:
                continue
            seen.add((m.train_benchmark, m.train_id, m.benchmark))
            out.setdefault(m.benchmark, Counter())[m.kind] += 1
        return {b: {"exact": c.get("exact", 0), "near": c.get("near", 0)} for b, c in out.items()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "against": self.against, "benchmarks": self.benchmarks,
            "eval_records": self.eval_records, "near_threshold": self.near_threshold,
            "n_checked": self.n_checked, "n_removed": self.n_removed,
            "per_benchmark": self.per_benchmark(),
            "matches": [asdict(m) for m in self.matches],
        }


def decontaminate(records: Sequence[MCQRecord], eval_sets: dict[str, Sequence[MCQRecord]], *,
                  near_threshold: float = 90.0, num_perm: int = 128, bands: int = 32,
                  against: dict[str, Any] | None = None) -> tuple[list[MCQRecord], DecontaminationReport]:
    """Remove training rows that duplicate an evaluation question. Exact: the same
    normalised question and options (in any order). Near: a MinHash LSH candidate whose
    text (question and options) has ``rapidfuzz.fuzz.ratio`` at or above
    ``near_threshold``, or whose options are the same and whose question holds the
    other's (a copy with a sentence added or cut; see :data:`CONTAINED_MIN_SHARE`).

    Deliberately conservative: a question that shares a long vignette with an evaluation
    question is removed even when its options differ. On the real data that is how
    MedXpertQA reuses MedQA / MedBullets cases with ten options instead of four or five;
    it also removes two questions on one long shared abstract that ask different things.
    Returns the kept rows (order kept) and the report."""
    from rapidfuzz import fuzz

    report = DecontaminationReport(against=against, benchmarks=list(eval_sets),
                                   near_threshold=near_threshold, n_checked=len(records))
    exact: dict[str, list[tuple[str, str]]] = {}
    texts: list[str] = []
    parts: list[tuple[str, str]] = []
    owners: list[tuple[str, str]] = []
    by_options: dict[str, list[int]] = {}
    lsh = MinHashLSH(num_perm=num_perm, bands=bands)
    for bench, recs in eval_sets.items():
        report.eval_records[bench] = len(recs)
        for r in recs:
            q, o = match_parts(r)
            t = f"{q} || {o}"
            exact.setdefault(t, []).append((bench, r.id))
            lsh.add(len(texts), t)
            by_options.setdefault(o, []).append(len(texts))
            texts.append(t)
            parts.append((q, o))
            owners.append((bench, r.id))
    kept: list[MCQRecord] = []
    for rec in records:
        q, o = match_parts(rec)
        t = f"{q} || {o}"
        found: list[Match] = [Match(rec.id, b, eid, "exact", 100.0, rec.benchmark)
                              for b, eid in exact.get(t, ())]
        if not found:
            best: dict[str, Match] = {}
            cands = lsh.query(t)
            same_opts = by_options.get(o, ())
            if len(same_opts) <= OPTION_BUCKET_MAX:
                cands = cands.union(same_opts)
            for j in cands:
                sim = fuzz.ratio(t, texts[j], score_cutoff=near_threshold)
                if not sim:
                    eq, eo = parts[j]
                    if o != eo or not _contained(q, eq):
                        continue
                    sim = fuzz.ratio(t, texts[j])
                b, eid = owners[j]
                if b not in best or sim > best[b].similarity:
                    best[b] = Match(rec.id, b, eid, "near", round(float(sim), 2), rec.benchmark)
            found = list(best.values())
        if found:
            report.matches.extend(found)
        else:
            kept.append(rec)
    return kept, report


def load_eval_sets(against: str | None, benchmarks: str | Sequence[str] | None = "all"
                   ) -> tuple[dict[str, list[MCQRecord]], dict[str, Any]]:
    """The evaluation questions to decontaminate against, per benchmark, read through
    :mod:`lm_eval_medsplit.sources` (``None``: the source in use)."""
    from lm_eval_medsplit.sources import resolve_source

    src = resolve_source(against)
    available = src.benchmarks()
    if benchmarks in (None, "all", ["all"]):
        names = available
    else:
        items = benchmarks.split(",") if isinstance(benchmarks, str) else list(benchmarks)
        names = []
        for x in (s.strip() for s in items if s.strip()):
            b = registry.find_benchmark(x)
            names.append(b.name if b else x)
        absent = [n for n in names if n not in available]
        if absent:
            raise TrainDataError(f"decontamination source {src.location} has no {', '.join(absent)}; "
                                 f"it has: {', '.join(available)}")
    out = {}
    for n in names:
        try:
            out[n] = src.load(n)[0]
        except (OSError, ConnectionError, ValueError) as e:
            if src.kind != "hub":
                raise
            from lm_eval_medsplit.sources import HubUnavailableError

            # said in medsplit-train's terms, not the CLI's --source
            detail = e.detail if isinstance(e, HubUnavailableError) else f"{type(e).__name__}: {e}"
            raise TrainDataError(
                f"cannot load {n} from {src.location} to decontaminate against: {detail}. "
                f"Pass --decontaminate_against DIR|FILE.jsonl (a local evaluation source) or none; "
                f"with the dataset in the Hugging Face cache, set HF_HUB_OFFLINE=1") from e
    return out, src.describe()


# --------------------------------------------------------------------------- rendering


def sft_completion(record: MCQRecord, *, think_tags: bool = True, continuation: bool = False,
                   style: str = "cot") -> str:
    """The SFT target: the worked reasoning, then the final-answer line the scoring core
    reads in ``style``. ``continuation``: the text that continues an adversarial prefill
    (whose ``<think>`` is already open in the prompt)."""
    from lm_eval_medsplit.prompts import final_answer_line

    answer = final_answer_line(record.answer_idx, style)
    body = reasoning_text(record)
    if think_tags:
        if continuation:
            return f"\n{body}\n{THINK_CLOSE}\n\n{answer}"
        return f"{THINK_OPEN}\n{body}\n{THINK_CLOSE}\n\n{answer}"
    return f"\n\n{body}\n\n{answer}" if continuation else f"{body}\n\n{answer}"


def _messages(record: MCQRecord, *, style: str, adversarial: bool, think_tags: bool
              ) -> tuple[list[dict[str, str]], int | None]:
    from lm_eval_medsplit.prompts import build_prompt

    if not adversarial:
        return [dict(m) for m in build_prompt(record, style).messages], None
    p = build_prompt(record, style, adversarial="prefill", trace_index=_trace_index(record))
    messages = [dict(m) for m in p.messages]
    if think_tags:
        messages[-1]["content"] = f"{THINK_OPEN}\n{p.prefill}"
    return messages, p.trace_index


def _trace_index(record: MCQRecord) -> int:
    n = len(record.adversarial_traces)
    return int(record.content_hash(), 16) % n if n else 0


def render_prompt(messages: list[dict[str, str]], tokenizer, *, prefill: bool) -> str:
    """Chat messages as prompt text with the tokenizer's chat template: a generation
    prompt for a clean prompt, the open assistant turn for a prefill."""
    if tokenizer is None:
        raise TrainDataError("text prompts need the model's tokenizer")
    if prefill:
        return tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def build_rows(records: Sequence[MCQRecord], task: str, *,
               adversarial_ids: set[tuple[str, str]] = frozenset(),
               style: str = "cot", think_tags: bool = True, prompt_format: str = "conversational",
               tokenizer=None) -> list[dict[str, Any]]:
    """Dataset rows for ``task`` (``sft`` or ``grpo``). ``prompt_format`` is
    ``conversational`` (messages) or ``text`` (rendered with ``tokenizer``);
    ``adversarial_ids`` holds the :func:`row_key` of the rows given a prefill."""
    from lm_eval_medsplit.samples import sample_metadata

    if task not in TASKS:
        raise TrainDataError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if prompt_format == "conversational" and adversarial_ids:
        raise TrainDataError("adversarial prefill prompts continue an assistant turn, which TRL's "
                             "conversational prompts cannot express; use prompt_format text or auto")
    rows = []
    for r in records:
        adv = row_key(r) in adversarial_ids
        messages, trace_index = _messages(r, style=style, adversarial=adv, think_tags=think_tags)
        meta = sample_metadata(r, adversarial="prefill" if adv else None, trace_index=trace_index)
        row: dict[str, Any] = {}
        if prompt_format == "text":
            row["prompt"] = render_prompt(messages, tokenizer, prefill=adv)
        else:
            row["prompt"] = messages
        if task == "sft":
            completion = sft_completion(r, think_tags=think_tags, continuation=adv, style=style)
            row["completion"] = (completion if prompt_format == "text"
                                 else [{"role": "assistant", "content": completion}])
        row["answer_idx"] = r.answer_idx
        row["options"] = list(r.options.values())
        row["style"] = style  # the rewards score each completion in its row's style
        row.update(meta)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- the pipeline


@dataclass
class PreparedData:
    rows: list[dict[str, Any]]
    report: dict[str, Any]
    decontamination: DecontaminationReport | None = None

    def to_dataset(self):
        import datasets

        return datasets.Dataset.from_list(self.rows)


def prepare_training_data(args: MedsplitTrainArguments, task: str, *, tokenizer=None,
                          log=print) -> PreparedData:
    """Run the whole data pipeline for ``task`` and return the rows and a report of what
    every step kept and dropped."""
    if task not in TASKS:
        raise TrainDataError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    records, load_report = load_train_records(args.dataset_source, args.dataset_config,
                                              split=args.dataset_split, revision=args.dataset_revision,
                                              strict=getattr(args, "dataset_strict", False))
    from lm_eval_medsplit.dataset import skipped_rows_message

    skipped = skipped_rows_message(load_report, "--dataset_strict true")
    if skipped:
        log(f"warning: {skipped}")
    steps: dict[str, Any] = {"loaded": len(records), "skipped_invalid": load_report.n_skipped,
                             "skip_reasons": dict(load_report.skip_reasons())}
    no_gold = [r for r in records if r.answer_idx is None]
    records = [r for r in records if r.answer_idx is not None]
    steps["dropped_no_gold"] = len(no_gold)
    if task == "sft":
        n = len(records)
        records = [r for r in records if reasoning_text(r)]
        steps["dropped_no_reasoning"] = n - len(records)
    if not records:
        raise TrainDataError(f"no usable training rows in {args.dataset_source} ({args.dataset_config}): "
                             f"{json.dumps(steps)}")

    deco = None
    against = args.decontaminate_against
    if against is None or str(against).lower() != "none":
        eval_sets, described = load_eval_sets(against, args.decontaminate_benchmarks)
        records, deco = decontaminate(records, eval_sets, near_threshold=args.near_duplicate_threshold,
                                      against=described)
        counts = deco.per_benchmark()
        log(f"decontamination against {described.get('location')}: removed {deco.n_removed} of "
            f"{deco.n_checked} training rows")
        for b, c in counts.items():
            log(f"  {b:<26} exact {c['exact']:>5}  near {c['near']:>5}")
    steps["removed_contaminated"] = deco.n_removed if deco else 0

    probs_from = "not needed"
    if args.reasoning_threshold is not None:
        probs_from = ensure_reasoning_probs(records, args.reasoning_threshold)
    records, sel = select_reasoning(records, args.reasoning_threshold,
                                    knowledge_ratio=args.knowledge_ratio, seed=args.selection_seed)
    steps["selection"] = {**sel, "reasoning_prob_from": probs_from}
    t = args.reasoning_threshold
    records = cap(records, args.max_train_samples, seed=args.selection_seed,
                  stratum=None if t is None else (lambda r: r.reasoning_prob >= t))
    if args.max_train_samples is not None:
        steps["after_cap"] = {"rows": len(records),
                              "knowledge": 0 if t is None else sum(r.reasoning_prob < t for r in records)}
    if not records:
        raise TrainDataError(f"no training rows left after selection: {json.dumps(steps)}")

    adversarial_ids: set[str] = set()
    traces_from = None
    if args.adversarial_share > 0:
        from lm_eval_medsplit.adversarial import OFFLINE_SOURCE, add_offline_traces

        adversarial_ids = choose_adversarial(records, args.adversarial_share, seed=args.selection_seed)
        need = [r for r in records if row_key(r) in adversarial_ids and not r.adversarial_traces]
        add_offline_traces(need)
        traces_from = OFFLINE_SOURCE if need else "source"
    fmt = args.prompt_format
    if fmt == "auto":
        fmt = "text" if adversarial_ids else "conversational"
    rows = build_rows(records, task, adversarial_ids=adversarial_ids, style=args.prompt_style,
                      think_tags=args.think_tags, prompt_format=fmt, tokenizer=tokenizer)
    steps["final"] = len(rows)
    steps["adversarial"] = len(adversarial_ids)
    report = {
        "task": task,
        "source": {"dataset_source": args.dataset_source, "config": args.dataset_config,
                   "split": args.dataset_split,
                   "revision": load_report.revision or args.dataset_revision,
                   "files": load_report.files, "content_hash": load_report.content_hash},
        "steps": steps,
        "prompt_format": fmt,
        "prompt_style": args.prompt_style,
        "think_tags": args.think_tags,
        "adversarial_traces_from": traces_from,
        "decontamination": deco.as_dict() if deco else None,
        "rows_hash": hashlib.sha256("\n".join(
            json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows).encode()).hexdigest(),
    }
    return PreparedData(rows, report, deco)


__all__ = [
    "MedsplitTrainArguments", "TrainDataError", "load_train_records", "reasoning_text",
    "ensure_reasoning_probs", "select_reasoning", "cap", "row_key", "choose_adversarial",
    "normalise_text",
    "match_text", "MinHashLSH", "Match", "DecontaminationReport", "decontaminate",
    "load_eval_sets", "sft_completion", "render_prompt", "build_rows", "PreparedData",
    "prepare_training_data",
]
