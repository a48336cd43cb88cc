"""Every command in README.md and docs/*.md runs as written, or says why it cannot here.

Commands are the lines of ```bash / ```sh / ```shell / ```console fences (``$ `` prompts
stripped for console), with ``\\`` continuations joined; comment-only lines are not
commands. A command is either

- run by :func:`test_documented_commands_run` (slow), as written, from a copy of the
  checkout whose ``../shared/data`` is the real data, in the order of its file; or
- marked with what it needs, in a trailing comment ``# needs: hub, gpu`` on any of its
  lines, or for a whole block with ``<!-- needs: gpu -->`` on the line just before the
  fence. Kinds: ``hub`` (Hugging Face hub: a model or dataset by id), ``gpu``, ``api``
  (an API key or a remote endpoint), ``server`` (starts or needs a long-running server),
  ``pypi`` (installs from the package index), ``install`` (changes the Python
  environment; the fresh-venv tests cover it), ``ci`` (the test suite itself); or
- marked ``# test: test_name`` (or ``<!-- test: test_name -->``): a test of that name
  in tests/ runs it.

:func:`test_every_documented_command_is_runnable_or_marked` (fast) keeps the list
complete: a new doc file or command is checked without changes here, and a command with
a placeholder (``...``, ``<commit>``) must be marked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDSPLIT_SHARED_DATA", REPO.parent / "shared" / "data"))

KINDS = {"hub", "gpu", "api", "server", "pypi", "install", "ci"}
SHELL_FENCES = {"bash", "sh", "shell", "console"}
_FENCE = re.compile(r"^\s*```\s*([\w+-]*)")
_BLOCK_MARK = re.compile(r"^\s*<!--\s*(needs|test)\s*:\s*(.*?)\s*-->\s*$")
_NEEDS = re.compile(r"#\s*needs:\s*([A-Za-z, ]+)")
_TEST = re.compile(r"#\s*test:\s*(\w+)")
_PLACEHOLDER = re.compile(r"(?<![\w.])\.\.\.(?![\w.])|<[a-z][\w -]*>")


@dataclass
class Command:
    file: str
    line: int
    text: str
    needs: set[str] = field(default_factory=set)
    tests: list[str] = field(default_factory=list)

    @property
    def marked(self) -> bool:
        return bool(self.needs or self.tests)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text.splitlines()[0][:100]}"


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _marks(kind: str, value: str, cmd: Command) -> None:
    if kind == "needs":
        cmd.needs |= {w.strip().lower() for w in re.split(r"[,\s]+", value) if w.strip()}
    else:
        cmd.tests += [w for w in re.split(r"[,\s]+", value) if w]


def extract_commands(path: Path) -> list[Command]:
    """The shell commands of one Markdown file, with their marks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rel = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
    out: list[Command] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang = m.group(1).lower()
        block_mark = _BLOCK_MARK.match(lines[i - 1]) if i > 0 else None
        i += 1
        body: list[tuple[int, str]] = []
        while i < len(lines) and not _FENCE.match(lines[i]):
            body.append((i + 1, lines[i]))
            i += 1
        i += 1  # the closing fence
        if lang not in SHELL_FENCES:
            continue
        j = 0
        while j < len(body):
            lineno, text = body[j]
            if lang == "console":
                if not text.lstrip().startswith("$ "):
                    j += 1
                    continue
                text = text.lstrip()[2:]
            if not text.strip() or text.lstrip().startswith("#"):
                j += 1
                continue
            parts = [text]
            while parts[-1].rstrip().endswith("\\") and j + 1 < len(body):
                j += 1
                parts.append(body[j][1])
            cmd = Command(rel, lineno, "\n".join(parts))
            if block_mark:
                _marks(block_mark.group(1), block_mark.group(2), cmd)
            for part in parts:
                for n in _NEEDS.findall(part):
                    _marks("needs", n, cmd)
                for t in _TEST.findall(part):
                    _marks("test", t, cmd)
            out.append(cmd)
            j += 1
    return out


def all_commands() -> list[Command]:
    return [c for f in doc_files() for c in extract_commands(f)]


def _code(text: str) -> str:
    """The command without its trailing comments (for placeholder checks)."""
    return "\n".join(re.sub(r"\s#\s.*$", "", line) for line in text.splitlines())


def _test_names() -> set[str]:
    names: set[str] = set()
    for p in (REPO / "tests").glob("test_*.py"):
        names |= set(re.findall(r"^def (test_\w+)", p.read_text(encoding="utf-8"), re.M))
    return names


def test_extraction_reads_fences_marks_and_continuations(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("text `medsplit no`\n\n```bash\n# a comment\nmedsplit a \\\n    --b c   # why\n"
                   "lm_eval --model hf x   # needs: hub, gpu\n```\n\n<!-- needs: api -->\n```sh\n"
                   "curl http://x\n```\n\n```python\nprint(1)\n```\n\n```console\n$ medsplit d\n"
                   "output line\n```\n", encoding="utf-8")
    cmds = extract_commands(doc)
    assert [c.text for c in cmds] == ["medsplit a \\\n    --b c   # why",
                                      "lm_eval --model hf x   # needs: hub, gpu",
                                      "curl http://x", "medsplit d"]
    assert [c.needs for c in cmds] == [set(), {"hub", "gpu"}, {"api"}, set()]


def test_every_documented_command_is_runnable_or_marked():
    cmds = all_commands()
    assert len(cmds) > 30, "the docs lost their commands, or the extraction broke"
    tests = _test_names()
    problems = []
    for c in cmds:
        if bad := c.needs - KINDS:
            problems.append(f"{c}\n    unknown need {sorted(bad)}; kinds: {sorted(KINDS)}")
        for t in c.tests:
            if t not in tests:
                problems.append(f"{c}\n    '# test: {t}' names no test function in tests/")
        if not c.marked:
            if _PLACEHOLDER.search(_code(c.text)):
                problems.append(f"{c}\n    has a placeholder: write it so it runs, or mark it "
                                f"('# needs: hub' / 'gpu' / 'api' / 'server' ...)")
            if re.search(r"&\s*$", _code(c.text)):
                problems.append(f"{c}\n    starts a background process: mark it '# needs: server'")
    assert not problems, (f"{len(problems)} documented command(s) neither run as written nor "
                          f"marked (see this module's docstring):\n" + "\n".join(problems))


# --------------------------------------------------------------------------- running them


def _sandbox(tmp_path: Path) -> Path:
    """A copy of the checkout (sources, docs, examples, tests' helpers) beside a
    ``shared/data`` that is the real data, so ``../shared/data`` works as in the docs."""
    root = tmp_path / "checkout"
    ignore = shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".pytest_cache",
                                    "outputs", "runs", "logs", "report", "medsplit-build")
    shutil.copytree(REPO, root, ignore=ignore, symlinks=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(SHARED_DATA.resolve())
    return root


def _env() -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("MEDSPLIT_SOURCE", None)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("doc", [str(p.relative_to(REPO)) for p in doc_files()])
def test_documented_commands_run(doc, tmp_path):
    if not SHARED_DATA.is_dir():
        pytest.skip(f"no shared data at {SHARED_DATA}")
    cmds = [c for c in extract_commands(REPO / doc) if not c.marked]
    if not cmds:
        pytest.skip(f"{doc}: every command is marked")
    root = _sandbox(tmp_path)
    env = _env()
    for c in cmds:
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", c.text], cwd=root, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (f"{c} exited {proc.returncode}\n{proc.stdout[-2000:]}\n"
                                      f"{proc.stderr[-3000:]}")


# --------------------------------------------------------------------------- your own questions


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_user_benchmark_end_to_end(tmp_path):
    """examples/mine.jsonl (benchmark 'mine', in no registry) through the README's steps:
    classify, offline adversarial traces, lm-eval task YAMLs, `lm_eval --model hf` and
    `inspect eval --model hf/...` on a tiny local model, and `medsplit report`, whose
    reasoning-vs-knowledge gap row for 'mine' joins both harnesses' samples."""
    import json

    from tiny_models import make_tiny_causal_lm

    env = _env()
    work = tmp_path / "work"
    shutil.copytree(REPO / "examples", work / "examples")
    make_tiny_causal_lm(work / "tiny-model")
    bin_ = Path(sys.executable).parent
    out = _run([bin_ / "medsplit", "classify", "examples/mine.jsonl", "--out", "mine.labelled.jsonl"],
               work, env)
    n_reasoning = int(re.search(r"(\d+) reasoning, (\d+) knowledge", out).group(1))
    assert 0 < n_reasoning < 12, out  # both subsets hold questions
    _run([bin_ / "medsplit", "adversarial", "generate", "mine.labelled.jsonl", "--out", "mine.adv.jsonl",
          "--offline"], work, env)
    names = _run([bin_ / "medsplit", "lm-eval", "tasks", "--source", "mine.adv.jsonl", "--mode", "all",
                  "--write", "my-tasks/"], work, env)
    assert "medsplit_mine_reasoning_adversarial" in names
    assert len(list((work / "my-tasks").glob("medsplit_mine_*.yaml"))) == 6
    # lm-eval, from another folder: the YAMLs carry the source, no --metadata needed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args",
          f"pretrained={work / 'tiny-model'},dtype=float32", "--device", "cpu",
          "--include_path", work / "my-tasks", "--tasks",
          "medsplit_mine_reasoning,medsplit_mine_knowledge,medsplit_mine_reasoning_adversarial",
          "--gen_kwargs", "max_gen_toks=8", "--log_samples", "--output_path", work / "runs"],
         elsewhere, env)
    (results,) = (work / "runs").rglob("results_*.json")
    res = json.loads(results.read_text())
    prov = res["configs"]["medsplit_mine_reasoning"]["metadata"]["medsplit"]
    assert prov["source"]["location"] == str(work / "mine.adv.jsonl")
    assert prov["n_subset_records"] == n_reasoning
    assert res["configs"]["medsplit_mine_knowledge"]["metadata"]["medsplit"]["n_subset_records"] \
        == 12 - n_reasoning
    # Inspect, a relative model path after hf/
    _run([bin_ / "inspect", "eval", "lm_eval_medsplit/medsplit", "--model", "hf/tiny-model",
          "-T", "source=mine.adv.jsonl", "--max-tokens", "8", "--log-dir", "logs/",
          "--display", "none"], work, env)
    (log,) = (work / "logs").glob("*.eval")
    dump = json.loads(_run([bin_ / "inspect", "log", "dump", log], work, env))
    assert dump["status"] == "success"
    metrics = dump["results"]["scores"][0]["metrics"]
    assert {"accuracy", "reasoning_accuracy", "knowledge_accuracy"} <= set(metrics)
    # the report: knowledge vs reasoning for 'mine', from both harnesses
    said = _run([bin_ / "medsplit", "report", "runs/", "logs/", "--out", "report/"], work, env)
    # "wrote csv: report/csv (9 files)": the folder shown holds all the files counted
    for folder, n in re.findall(r"^wrote [\w-]+: (\S+) \((\d+) files\)$", said, re.M):
        assert sum(f.is_file() for f in (work / folder).rglob("*")) >= int(n), (folder, n, said)
    report = json.loads((work / "report" / "report.json").read_text())
    gaps = [g for g in report["gaps"] if g["benchmark"] == "mine"]
    assert len({g["model"] for g in gaps}) == 2, gaps  # one lm-eval run, one Inspect run
    for g in gaps:
        assert (g["reasoning_n"], g["knowledge_n"]) == (n_reasoning, 12 - n_reasoning), g
        assert g["gap"] == pytest.approx(g["reasoning_accuracy"] - g["knowledge_accuracy"]) or \
            g["gap"] == pytest.approx(g["knowledge_accuracy"] - g["reasoning_accuracy"])
    assert "mine" in (work / "report" / "report.md").read_text()
