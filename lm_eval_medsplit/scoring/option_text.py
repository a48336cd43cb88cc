"""Stage 5: an option's own text in the concluding sentences, exact then fuzzy.

Accepts the normalised text; returns ``(letter, ambiguous)``. Negated mentions ("cannot be
classified solely on X", "rather than X") never count; two options matching equally well
is ambiguous.
"""

from __future__ import annotations

import re

from .final_line import _CUE, _NEGATION_WORDS, _last_lines
from .options import _norm_words, _Options
from .results import FUZZY_CUTOFF, FUZZY_MIN_OPTION_CHARS, FUZZY_TIE_MARGIN

# --------------------------------------------------------------------------- option text


_NEG_WORDS_BEFORE = frozenset(
    "not no never nor rather instead except excluding exclude unlike than over against "
    "eliminate eliminating isn aren t".split())
_NEG_WORDS_AFTER = frozenset(
    "not incorrect wrong false unlikely ruled excluded eliminated isn aren t".split())


_LIST_ITEM = re.compile(r"(?:[-•+]\s|\d{1,2}[.)]\s|\(?[A-Za-z][.):]\s|\([A-Za-z]\)\s)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[^a-z])")


def _final_sentences(text: str, n: int = 2, window: int = 800) -> list[str]:
    """The conclusion: the last ``n`` sentences (last first), normalised to words. A text
    that ends with a list item ("J. Hygiene - prevents...") or with an announcement
    whose answer never came ("the most likely diagnosis is:") has none."""
    out: list[str] = []
    for line in _last_lines(text[-window:], 3):
        if _LIST_ITEM.match(line):
            break  # an option-by-option analysis is not a conclusion
        for part in reversed(_SENTENCE_END.split(line)):
            if not out and part.rstrip().endswith(":"):
                return out
            norm = _norm_words(part)
            if norm:
                out.append(norm)
                if len(out) == n:
                    return out
    return out


def _negated(words_before: list[str], words_after: list[str]) -> bool:
    return bool(_NEG_WORDS_BEFORE.intersection(words_before[-3:])
                or _NEG_WORDS_AFTER.intersection(words_after[:3]))


def _exact_hits(sentence: str, opts: _Options) -> list[int]:
    padded = f" {sentence} "
    spans: list[tuple[int, int, int]] = []
    for i, t in enumerate(opts.normalised_texts()):
        if not t:
            continue
        needle = f" {t} "
        start = padded.find(needle)
        while start >= 0:
            end = start + len(needle)
            if not _negated(padded[:start].split(), padded[end:].split()):
                spans.append((start, end - 1, i))
                break
            start = padded.find(needle, start + 1)
    # an option whose match lies inside a longer option's match ("Vitamin A" inside
    # "Vitamin A and D") is not a separate hit
    hits = [i for s, e, i in spans
            if not any(s2 <= s and e <= e2 and (e2 - s2) > (e - s) for s2, e2, _ in spans)]
    return sorted(set(hits))


_COPULAS = frozenset(("is", "are", "be", "was"))
_ARTICLES = frozenset(("the", "a", "an"))


def _short(text: str) -> bool:
    """Whether the whole answer is one or two sentences ("Conduction is fastest in the
    Purkinje fibers."): then it is its own conclusion."""
    t = text.strip()
    return len(t) <= 400 and len(_SENTENCE_END.split(t)) <= 2


def _looping(text: str) -> bool:
    """Whether the tail of ``text`` repeats one sentence three or more times: a model stuck
    in a loop ("The probability of having a boy is 1/2. The probability of ...") has not
    concluded anything."""
    parts = [p.strip() for p in _SENTENCE_END.split(text[-1500:])]
    seen: dict[str, int] = {}
    for p in parts:
        if len(p) >= 15:
            seen[p] = seen.get(p, 0) + 1
            if seen[p] >= 3:
                return True
    return False


def _concludes(sentence: str, opts: _Options, hits: list[int], short: bool) -> bool:
    """Whether a sentence naming option texts states a conclusion: it has a conclusion word
    ("therefore", "most likely", "answer", "best", ...), states the option with a copula
    ("the next step is Mannitol"), or is the whole answer. A sentence that only mentions an
    option ("The patient's history of cardiac arrhythmia may be contributing") is none."""
    if short or _CUE.search(sentence):
        return True
    padded = f" {sentence} "
    for i in hits:
        t = opts.normalised_texts()[i]
        if any(c.isdigit() for c in t):
            continue  # "... is 1/16 + ..." is a step of a calculation, not its result
        at = padded.find(f" {t} ")
        words = padded[:at].split()[-2:]
        if words and words[-1] in _ARTICLES:
            words = words[:-1]
        if words and words[-1] in _COPULAS:
            return True
    return False


def _from_option_text(text: str, opts: _Options) -> tuple[str | None, bool]:
    if not opts.texts:
        return None, False
    short = _short(text)
    if not short and _looping(text):
        return None, False
    for sentence in _final_sentences(text):
        hits = _exact_hits(sentence, opts)
        if hits and not _concludes(sentence, opts, hits, short):
            continue
        if len(hits) == 1:
            return opts.letters[hits[0]], False
        if len(hits) > 1:
            return None, True
    return None, False


_fuzz = None


def _get_fuzz():
    global _fuzz
    if _fuzz is None:
        try:
            from rapidfuzz import fuzz
        except ImportError:  # pragma: no cover - rapidfuzz is a dependency
            _fuzz = False
        else:
            _fuzz = fuzz
    return _fuzz


# word pairs that look alike but mean opposite things share their first three letters
# only in these cases; other pairs must agree on the first three letters ("increase" is
# not "decrease", "mitosis" is not "meiosis", "fibres" is "fibers")
_OPPOSED_PREFIXES = (("hyper", "hypo"), ("inter", "intra"), ("ante", "anti"))


def _opposed_words(fuzz, option: str, stretch: str) -> bool:
    """Whether an option word is matched by a look-alike word of opposite meaning."""
    words = stretch.split()
    for a in option.split():
        if a in words or not words:
            continue
        b = max(words, key=lambda w: fuzz.ratio(a, w))
        if fuzz.ratio(a, b) < 70 and not a.isdigit():
            continue  # a missing word, not a look-alike
        a2 = a.replace("ae", "e").replace("oe", "e")  # haem/hem, oesophagus/esophagus
        b2 = b.replace("ae", "e").replace("oe", "e")
        if a2 == b2:
            continue
        if a2[:3] != b2[:3] or any(c.isdigit() for c in a2 + b2):
            return True  # different stems, or different numbers ("3:1" is not "9:6:1")
        for p, q in _OPPOSED_PREFIXES:
            if a2.startswith(p) and b2.startswith(q) or a2.startswith(q) and b2.startswith(p):
                return True
    return False


def _from_fuzzy(text: str, opts: _Options) -> tuple[str | None, bool]:
    if not opts.texts:
        return None, False
    fuzz = _get_fuzz()
    if not fuzz:
        return None, False
    floor = FUZZY_CUTOFF - FUZZY_TIE_MARGIN
    short = _short(text)
    if not short and _looping(text):
        return None, False
    for sentence in _final_sentences(text):
        if _NEGATION_WORDS.search(sentence) or not (short or _CUE.search(sentence)):
            continue
        scores = []
        n = len(sentence)
        for i, t in enumerate(opts.normalised_texts()):
            if len(t) < FUZZY_MIN_OPTION_CHARS or len(t) > n:
                continue
            al = fuzz.partial_ratio_alignment(t, sentence, score_cutoff=floor)
            if al is None:
                continue
            # snap the aligned stretch to whole words, then score it as a whole: "iron"
            # must not match inside "environment"
            a, b = al.dest_start, al.dest_end
            while a > 0 and sentence[a - 1] != " ":
                a -= 1
            while b < n and sentence[b] != " ":
                b += 1
            stretch = sentence[a:b]
            s = fuzz.ratio(t, stretch)
            if s >= floor and not _opposed_words(fuzz, t, stretch):
                scores.append((s, i))
        if not scores:
            continue
        scores.sort(reverse=True)
        best, i = scores[0]
        if best < FUZZY_CUTOFF:
            continue
        if len(scores) > 1 and scores[1][0] > best - FUZZY_TIE_MARGIN:
            return None, True
        return opts.letters[i], False
    return None, False
