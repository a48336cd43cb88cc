"""Decontamination of training rows against the evaluation questions (step 3).

Accepts: training records and the evaluation records per benchmark, read through
:mod:`lm_eval_medsplit.sources` by :func:`load_eval_sets` (hub, a directory or a JSONL
file). Guarantees: :func:`decontaminate` removes every training row whose normalised
question and options equal an evaluation question's (exact) or that a MinHash LSH
candidate verified with ``rapidfuzz.fuzz.ratio`` (or containment with the same options)
shows to be a near duplicate; kept rows keep their order, and the
:class:`DecontaminationReport` lists every match with counts per benchmark. numpy and
rapidfuzz load inside the functions.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lm_eval_medsplit import registry
from lm_eval_medsplit.schema import MCQRecord
from lm_eval_medsplit.train.arguments import TrainDataError

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
