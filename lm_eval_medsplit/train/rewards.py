"""GRPO reward functions, in the style of ``trl.rewards``.

Each reward is a picklable callable ``reward(completions, **kwargs) -> list[float | None]``
that TRL's ``GRPOTrainer`` calls with the dataset columns as keyword arguments (here the
gold letter ``answer_idx`` and the option texts ``options``), so the module-level instances
can be named by dotted path, e.g. with TRL's own command line::

    trl grpo --config grpo.yaml \\
        --reward_funcs lm_eval_medsplit.train.rewards.accuracy_reward \\
                       lm_eval_medsplit.train.rewards.format_reward

- :data:`accuracy_reward`: the scoring core's :func:`lm_eval_medsplit.scoring.score` on the
  completion, the same function the evaluation tasks use: correct 1, incorrect 0, unparsed
  a configurable penalty (:class:`AccuracyReward`; the module-level instance reads
  ``$MEDSPLIT_UNPARSED_PENALTY``, default 0); ``None`` for rows whose gold cannot be read,
  so TRL leaves them out. Logs the extraction method counts of every call (``log_metric``)
  and each completion's method and prediction (``log_extra``).
- :data:`format_reward`: 1 for ``<think>reasoning</think>`` followed by the final-answer line
  (``Answer: X``) as the last line, else 0. The ``<think>`` may be opened by the prompt (an
  adversarial prefill, or a chat template that ends its generation prompt with ``<think>``).
- the overlong penalty is TRL's own ``get_soft_overlong_punishment`` (see
  :func:`make_reward_funcs`).

Both read the prompt style of each row from its ``style`` column (written by
:func:`lm_eval_medsplit.train.rows.build_rows`; default ``cot``): in the ``paper`` style the
accuracy reward scores with ``scoring.score(..., style="paper")`` and the format reward
wants ``\\boxed{...}`` on the last line instead of ``Answer: X``.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from lm_eval_medsplit.prompts import DEFAULT_STYLE
from lm_eval_medsplit.scoring import METHODS, Outcome, opens_think, score

ENV_UNPARSED_PENALTY = "MEDSPLIT_UNPARSED_PENALTY"
METRIC_PREFIX = "medsplit"


# --------------------------------------------------------------------------- helpers


def completion_text(completion: Any) -> str:
    """The text of one completion: a string (standard format) or a list of messages
    (conversational; the assistant contents are joined)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return str(completion.get("content") or "")
    if isinstance(completion, Sequence):
        parts = []
        for m in completion:
            if isinstance(m, Mapping):
                if m.get("role", "assistant") == "assistant":
                    c = m.get("content")
                    parts.append(c if isinstance(c, str) else "")
            elif isinstance(m, str):
                parts.append(m)
        return "".join(parts)
    return "" if completion is None else str(completion)


@lru_cache(maxsize=65536)
def _options_from_json(text: str) -> Any:
    return json.loads(text)


def _options(value: Any) -> Any:
    """Options as the scoring core takes them; JSON strings (hub layout) are parsed once."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return _options_from_json(value)
        except json.JSONDecodeError:
            return value
    return value


def _gold(value: Any) -> str | None:
    if value is None:
        return None
    g = str(value).strip().upper()
    return g or None


def _column(kwargs: dict[str, Any], names: Sequence[str], n: int) -> list[Any]:
    for name in names:
        if name in kwargs and kwargs[name] is not None:
            col = list(kwargs[name])
            if len(col) != n:
                raise ValueError(f"column {name!r} has {len(col)} values for {n} completions")
            return col
    raise KeyError(f"the reward needs one of the dataset columns {', '.join(names)}; got "
                   f"{', '.join(sorted(k for k in kwargs if k not in _TRAINER_KWARGS))}")


_TRAINER_KWARGS = {"prompts", "completion_ids", "trainer_state", "log_extra", "log_metric",
                   "environments"}


# --------------------------------------------------------------------------- accuracy


class AccuracyReward:
    """Accuracy by the scoring core: ``correct``/``incorrect``/``unparsed_penalty`` per
    completion, ``None`` where the gold letter cannot be read (missing, or not one of the
    row's options). ``gold_column``/``options_column`` name the dataset columns."""

    __name__ = "accuracy_reward"

    def __init__(self, unparsed_penalty: float = 0.0, *, correct: float = 1.0,
                 incorrect: float = 0.0, fuzzy: bool = True, style: str = DEFAULT_STYLE,
                 gold_columns: Sequence[str] = ("answer_idx", "gold", "answer_letter"),
                 options_columns: Sequence[str] = ("options",)):
        self.unparsed_penalty = float(unparsed_penalty)
        self.style = style  # for rows without a ``style`` column
        self.correct = float(correct)
        self.incorrect = float(incorrect)
        self.fuzzy = fuzzy
        self.gold_columns = tuple(gold_columns)
        self.options_columns = tuple(options_columns)
        #: Extraction methods counted over every call of this instance.
        self.method_counts: Counter[str] = Counter()

    def __repr__(self) -> str:
        return (f"AccuracyReward(unparsed_penalty={self.unparsed_penalty}, correct={self.correct}, "
                f"incorrect={self.incorrect}, fuzzy={self.fuzzy})")

    def score_one(self, text: Any, options: Any, gold: Any, style: str | None = None):
        """The scoring core's :class:`~lm_eval_medsplit.scoring.Score`, or ``None`` when the
        gold letter cannot be read."""
        g = _gold(gold)
        if g is None:
            return None
        try:
            return score(text, _options(options), g, fuzzy=self.fuzzy, style=style or self.style)
        except (ValueError, TypeError):
            return None  # gold outside the options, or unreadable options

    def __call__(self, completions: list, **kwargs) -> list[float | None]:
        n = len(completions)
        golds = _column(kwargs, self.gold_columns, n)
        options = _column(kwargs, self.options_columns, n)
        styles = kwargs.get("style") or [None] * n
        rewards: list[float | None] = []
        methods: list[str | None] = []
        preds: list[str | None] = []
        counts = dict.fromkeys(METHODS, 0)
        outcomes = dict.fromkeys(Outcome, 0)
        value = {Outcome.CORRECT: self.correct, Outcome.INCORRECT: self.incorrect,
                 Outcome.UNPARSED: self.unparsed_penalty}
        for c, opts, gold, style in zip(completions, options, golds, styles):
            s = self.score_one(completion_text(c), opts, gold, style)
            if s is None:
                rewards.append(None)
                methods.append(None)
                preds.append(None)
                continue
            rewards.append(value[s.outcome])
            methods.append(s.method)
            preds.append(s.pred)
            counts[s.method] += 1
            outcomes[s.outcome] += 1
        self.method_counts.update({k: v for k, v in counts.items() if v})
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            for m in METHODS:
                log_metric(f"{METRIC_PREFIX}/method/{m}", float(counts[m]))
            n_scored = sum(outcomes.values())
            if n_scored:
                log_metric(f"{METRIC_PREFIX}/accuracy", outcomes[Outcome.CORRECT] / n_scored)
                log_metric(f"{METRIC_PREFIX}/unparsed_rate", outcomes[Outcome.UNPARSED] / n_scored)
        log_extra = kwargs.get("log_extra")
        if log_extra is not None:
            log_extra("extraction_method", methods)
            log_extra("pred", preds)
        return rewards


def make_accuracy_reward(unparsed_penalty: float = 0.0, **kw) -> AccuracyReward:
    return AccuracyReward(unparsed_penalty, **kw)


def _env_penalty() -> float:
    value = os.environ.get(ENV_UNPARSED_PENALTY)
    try:
        return float(value) if value not in (None, "") else 0.0
    except ValueError:
        raise ValueError(f"${ENV_UNPARSED_PENALTY} must be a number, got {value!r}") from None


#: The accuracy reward by dotted path (``lm_eval_medsplit.train.rewards.accuracy_reward``).
accuracy_reward = AccuracyReward(_env_penalty())


# --------------------------------------------------------------------------- format

_ANSWER_LINE = re.compile(r"^\s*Answer:\s*([A-Z])\s*$")
#: The ``paper`` style's final answer: a non-empty ``\boxed{...}`` on the last line.
_BOXED_LINE = re.compile(r"\\boxed\{\s*(?:\\text\{)?\s*([^{}\s][^{}]*)\}")
_OPEN = re.compile(r"<think>")
_CLOSE = re.compile(r"</think>")


def _prompt_opens_think(prompt: Any) -> bool:
    """Whether ``prompt`` leaves a ``<think>`` block open for the completion to close."""
    text = completion_text(prompt[-1:]) if isinstance(prompt, list) and prompt and \
        isinstance(prompt[-1], Mapping) and prompt[-1].get("role") == "assistant" else \
        (prompt if isinstance(prompt, str) else "")
    return opens_think(text)


class FormatReward:
    """1.0 when a completion is ``<think>reasoning</think>`` then text whose last non-empty
    line is the final-answer line ``Answer: X`` (X one of the row's letters when the
    ``options`` column is given; in a row of the ``paper`` style, a non-empty
    ``\\boxed{...}`` on that line instead), else 0.0. The opening tag may come from the
    prompt."""

    __name__ = "format_reward"

    def __init__(self, *, think_opened_by_template: bool = False):
        self.think_opened_by_template = think_opened_by_template

    def check(self, text: str, *, opened: bool = False, letters: str | None = None,
              style: str | None = None) -> bool:
        stripped = text.lstrip()
        starts_open = stripped.startswith("<think>")
        n_open = len(_OPEN.findall(text))
        n_close = len(_CLOSE.findall(text))
        if n_close != 1:
            return False
        if starts_open:
            if n_open != 1 or opened:
                return False
            inner = stripped[len("<think>"):stripped.index("</think>")]
        else:
            if n_open or not (opened or self.think_opened_by_template):
                return False
            inner = stripped[:stripped.index("</think>")]
        if not inner.strip():
            return False
        tail = stripped[stripped.index("</think>") + len("</think>"):]
        lines = [ln for ln in tail.splitlines() if ln.strip()]
        if not lines:
            return False
        if style == "paper":
            return bool(_BOXED_LINE.search(lines[-1]))
        m = _ANSWER_LINE.match(lines[-1])
        return bool(m) and (letters is None or m.group(1) in letters)

    def __call__(self, completions: list, **kwargs) -> list[float]:
        n = len(completions)
        prompts = kwargs.get("prompts") or [None] * n
        options = kwargs.get("options") or [None] * n
        styles = kwargs.get("style") or [None] * n
        out = []
        for c, p, opts, style in zip(completions, prompts, options, styles):
            letters = None
            if opts is not None:
                o = _options(opts)
                k = len(o) if isinstance(o, (list, tuple, Mapping)) else 0
                letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:k] if k else None
            ok = self.check(completion_text(c), opened=_prompt_opens_think(p), letters=letters,
                            style=style)
            out.append(1.0 if ok else 0.0)
        return out


#: The format reward by dotted path (``lm_eval_medsplit.train.rewards.format_reward``).
format_reward = FormatReward()
#: The same for chat templates whose generation prompt opens ``<think>`` itself (e.g. the
#: DeepSeek-R1 distills), for ``trl grpo``; ``medsplit-train`` detects such a template.
format_reward_think_opened = FormatReward(think_opened_by_template=True)


# --------------------------------------------------------------------------- registry

#: Short names accepted by ``--reward_funcs``.
SHORT_NAMES = ("accuracy", "format", "overlong")


def resolve_reward(name: str) -> Callable:
    """A reward function by dotted path (``pkg.module.func`` or ``pkg.module:func``)."""
    import importlib

    if ":" in name:
        module_path, attr = name.split(":", 1)
    elif "." in name:
        module_path, attr = name.rsplit(".", 1)
    else:
        raise ValueError(f"unknown reward {name!r}: use one of {', '.join(SHORT_NAMES)} or a dotted path")
    obj = getattr(importlib.import_module(module_path), attr)
    if not callable(obj):
        raise ValueError(f"{name} is not callable")
    return obj


def make_reward_funcs(names: Sequence[str], *, unparsed_penalty: float = 0.0,
                      max_completion_length: int | None = None, overlong_buffer: int = 0,
                      think_opened_by_template: bool = False) -> list[Callable]:
    """Reward callables for ``--reward_funcs``: ``accuracy``, ``format``, ``overlong``
    (TRL's ``get_soft_overlong_punishment(max_completion_length, overlong_buffer)``) or
    dotted paths."""
    out: list[Callable] = []
    for name in names:
        if name == "accuracy":
            out.append(AccuracyReward(unparsed_penalty))
        elif name == "format":
            out.append(FormatReward(think_opened_by_template=think_opened_by_template))
        elif name == "overlong":
            from trl.rewards import get_soft_overlong_punishment

            if not max_completion_length:
                raise ValueError("the overlong reward needs max_completion_length")
            if not 0 < overlong_buffer <= max_completion_length:
                raise ValueError("the overlong reward needs 0 < overlong_buffer <= max_completion_length")
            out.append(get_soft_overlong_punishment(max_completion_length, overlong_buffer))
        else:
            out.append(resolve_reward(name))
    if not out:
        raise ValueError("no reward functions given")
    return out


__all__ = [
    "AccuracyReward", "FormatReward", "accuracy_reward", "format_reward", "completion_text",
    "make_accuracy_reward", "make_reward_funcs", "resolve_reward", "SHORT_NAMES",
]
