"""The benchmark registry: the single source of truth for the 11 BioMed-R1-Eval configs.

Every other part of the project (sources, task YAML generator, Inspect tasks, reports,
training decontamination) reads benchmark names, option counts and licences from here.
"""

from __future__ import annotations

from dataclasses import dataclass

HUB_DATASET = "zou-lab/BioMed-R1-Eval"
#: Revision of the evaluation set on the hub, pinned to one commit so every user of this
#: version loads the same rows. This is the commit that published the dataset card
#: (licence, description) with all 11 configs listed, taken from the dataset's public
#: commit page; the hub itself was unreachable when it was pinned, so whether newer
#: commits exist was not checked. Override with ``--revision`` / ``MEDSPLIT_REVISION``
#: (e.g. ``main``: a branch name is resolved to its current commit sha at load time, and
#: that sha is what the run loads and records).
HUB_REVISION = "0e0de2a4f975b902a807dba14c40aadb291d24a2"
HUB_SPLIT = "test"

TRAIN_DATASET = "zou-lab/BioMed-R1-Train"
TRAIN_CONFIGS = ("biomed_r1", "m23k_clean")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark config of the evaluation set."""

    config: str
    """Config name on the hub (``zou-lab/BioMed-R1-Eval``) and folder name in local layouts."""
    name: str
    """Short task-friendly name used in every task name (``medsplit_{name}_reasoning``)."""
    title: str
    n_options: int | None
    """Number of options per question; ``None`` where it varies (up to :attr:`max_options`)."""
    max_options: int
    licence: str
    redistribution: str
    local: bool
    """Whether a raw copy can be legally shipped/obtained from public repositories."""

    @property
    def options_label(self) -> str:
        return str(self.n_options) if self.n_options else f"<= {self.max_options}"


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("medqa", "medqa", "MedQA (USMLE, 4 options)", 4, 4, "MIT",
              "redistributable", True),
    Benchmark("medmcqa", "medmcqa", "MedMCQA (validation)", 4, 4, "MIT (upstream)",
              "redistributable", True),
    Benchmark("pubmedqa", "pubmedqa", "PubMedQA (PQA-L)", 3, 3, "MIT",
              "redistributable", True),
    Benchmark("medbullets_op4", "medbullets_op4", "MedBullets (4 options)", 4, 4,
              "none stated; content (c) Medbullets", "research use; cite Chen et al. 2024", True),
    Benchmark("medbullets_op5", "medbullets_op5", "MedBullets (5 options)", 5, 5,
              "none stated; content (c) Medbullets", "research use; cite Chen et al. 2024", True),
    Benchmark("MedXpertQA", "medxpertqa", "MedXpertQA (Text)", 10, 10, "MIT",
              "redistributable", True),
    Benchmark("mmlu_health_biology", "mmlu_pro_health_biology", "MMLU-Pro health + biology",
              None, 10, "Apache-2.0 / MIT", "redistributable", True),
    Benchmark("GPQA_Medical_test", "gpqa_medical", "GPQA (medical subset)", 4, 4, "CC-BY-4.0",
              "do not publish in plain text (authors' request); hub only", False),
    Benchmark("hle_biomed", "hle_biomed", "Humanity's Last Exam (biomedical MCQ)", None, 20,
              "MIT", "do not redistribute (authors' request); hub only", False),
    Benchmark("Lancet", "lancet", "Lancet quiz questions", None, 5, "copyright The Lancet",
              "withheld by the authors for copyright; hub only", False),
    Benchmark("NEJM", "nejm", "NEJM quiz questions", None, 5, "copyright NEJM",
              "withheld by the authors for copyright; hub only", False),
)

_BY_KEY: dict[str, Benchmark] = {}
for _b in BENCHMARKS:
    _BY_KEY[_b.name] = _b
    _BY_KEY[_b.config] = _b
    _BY_KEY[_b.config.lower()] = _b


def get_benchmark(key: str) -> Benchmark:
    """Look a benchmark up by short name or hub config name (case-insensitive for configs)."""
    try:
        return _BY_KEY.get(key) or _BY_KEY[key.lower()]
    except KeyError:
        known = ", ".join(b.name for b in BENCHMARKS)
        raise KeyError(f"unknown benchmark {key!r}; known: {known}") from None


def find_benchmark(key: str) -> Benchmark | None:
    """Like :func:`get_benchmark` but returns ``None`` for user-defined benchmarks."""
    return _BY_KEY.get(key) or _BY_KEY.get(key.lower())


def benchmark_names() -> list[str]:
    return [b.name for b in BENCHMARKS]


def parse_benchmark_list(value: str | list[str] | None) -> list[Benchmark]:
    """Parse ``"medqa,pubmedqa"`` (or a list) into registry entries; ``None``/"all" gives all."""
    if value is None or value == "all" or value == ["all"]:
        return list(BENCHMARKS)
    items = value.split(",") if isinstance(value, str) else list(value)
    return [get_benchmark(x.strip()) for x in items if x.strip()]
