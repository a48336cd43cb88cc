"""The wheel carries everything (task YAMLs and Inspect tasks under the package's own
namespace), and a plain `pip install .` in a fresh venv gives a working `medsplit`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED_DIRS = {"lm_eval_medsplit": "lm_eval_medsplit", "task_yaml": "lm_eval_medsplit/task_yaml",
                "inspect_tasks": "lm_eval_medsplit/inspect_tasks"}
DATA_SUFFIXES = {".py", ".yaml", ".json", ".j2", ".html", ".npz"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, source_tree) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source_tree), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out)], check=True, capture_output=True)
    (whl,) = out.glob("*.whl")
    return whl


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def test_wheel_contains_every_shipped_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = []
    for rel in _tracked_files():
        top, _, rest = rel.partition("/")
        if top in SHIPPED_DIRS and Path(rel).suffix in DATA_SUFFIXES and "__pycache__" not in rel:
            if not (REPO / rel).exists():
                continue
            if f"{SHIPPED_DIRS[top]}/{rest}" not in names:
                missing.append(rel)
    assert not missing, f"not in the wheel (missing __init__.py or package-data pattern in pyproject.toml): {missing}"
    assert "lm_eval_medsplit/task_yaml/__init__.py" in names
    assert "lm_eval_medsplit/inspect_tasks/__init__.py" in names
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "medsplit = lm_eval_medsplit.cli:main" in meta
    assert "[inspect_ai]" in meta and "lm_eval_medsplit = lm_eval_medsplit.inspect_tasks._registry" in meta


@pytest.mark.slow
def test_fresh_venv_plain_install_runs_the_cli(tmp_path, raw_dir, source_tree):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(source_tree)], check=True, env=env,
                   cwd=tmp_path)
    exe = venv / "bin" / "medsplit"
    out = subprocess.run([str(exe), "benchmarks", "--json"], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    assert len(json.loads(out)) == 11
    out = subprocess.run([str(exe), "data", "validate", "--source", str(raw_dir), "--json"],
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert sum(json.loads(line)["records"] for line in out.splitlines()) == 11057
    f = tmp_path / "o.jsonl"
    f.write_text(json.dumps({"output": "so the answer is (B)", "options": ["x", "y"], "answer_idx": "B"}) + "\n")
    out = subprocess.run([str(exe), "score", str(f), "--json"], capture_output=True, text=True,
                         check=True, cwd=tmp_path).stdout
    assert json.loads(out)["accuracy"] == 1.0
    # the embedded classifier labels with the core alone; feature packages are not installed
    q = tmp_path / "q.jsonl"
    q.write_text(json.dumps({"id": "1", "question": "Which enzyme is deficient in galactosemia?",
                             "options": ["GALT", "Aldolase B"]}) + "\n")
    subprocess.run([str(exe), "classify", str(q), "--out", str(tmp_path / "l.jsonl"), "--no-progress"],
                   capture_output=True, text=True, check=True, cwd=tmp_path)
    assert 0 <= json.loads((tmp_path / "l.jsonl").read_text())["reasoning_prob"] <= 1
    absent = subprocess.run([str(py), "-c", "import importlib.util as u; print([m for m in ('sklearn', 'torch', "
                             "'matplotlib') if u.find_spec(m)])"],
                            capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert absent.strip() == "[]"
    # the installed package is the wheel, not the checkout
    where = subprocess.run([str(py), "-c", "import lm_eval_medsplit.task_yaml as t; print(t.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert str(venv) in where


# --------------------------------------------------------------------------- dependencies

# Which extra a module's third-party import belongs to (path glob, import name or "*", extra);
# anything not listed is core: `pip install .` must be enough for it.
FEATURE_IMPORTS = [
    ("inspect_tasks/*.py", "*", "inspect"),
    ("lm_eval_medsplit/report/read_inspect.py", "inspect_ai", "inspect"),
    ("lm_eval_medsplit/lm_eval_tasks.py", "lm_eval", "lm-eval"),
    ("lm_eval_medsplit/train/*.py", "*", "train"),
    ("lm_eval_medsplit/classifier/transformer.py", "torch", "train"),
    ("lm_eval_medsplit/classifier/transformer.py", "transformers", "train"),
    ("lm_eval_medsplit/trace_generation/local_model.py", "torch", "train"),
    ("lm_eval_medsplit/trace_generation/local_model.py", "transformers", "train"),
    ("lm_eval_medsplit/trace_generation/endpoint.py", "httpx", "endpoint"),
    ("lm_eval_medsplit/trace_generation/endpoint.py", "tenacity", "endpoint"),
    ("lm_eval_medsplit/classifier/*.py", "sklearn", "classifier"),
    ("lm_eval_medsplit/report/html.py", "*", "report"),
    ("lm_eval_medsplit/report/plots.py", "*", "report"),
]
# (extra, distribution) declared but imported by no module, on purpose.
NOT_IMPORTED = {
    ("vllm", "vllm"): "a generation backend lm-eval and TRL load by name (--model vllm, use_vllm=True)",
    # `lm_eval --model hf` needs these; lm-eval does not pull them in itself
    ("lm-eval", "torch"): "lm-eval's hf model", ("lm-eval", "transformers"): "lm-eval's hf model",
    ("lm-eval", "accelerate"): "lm-eval's hf model",
}
FIRST_PARTY = {"lm_eval_medsplit", "inspect_tasks", "task_yaml"}


def _imports(path: Path) -> dict[str, bool]:
    """Top-level third-party names a module imports (anywhere in it) -> whether the import is
    optional (inside a ``try`` that catches ImportError)."""
    import ast

    out: dict[str, bool] = {}

    def visit(node, optional: bool) -> None:
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, ast.Try):
                caught = set()
                for h in ch.handlers:
                    for e in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]):
                        caught.add(getattr(e, "id", None))
                if caught & {"ImportError", "ModuleNotFoundError"}:
                    for b in ch.body:
                        one(b, True)
                    for b in [*ch.handlers, *ch.orelse, *ch.finalbody]:
                        one(b, optional)
                    continue
            one(ch, optional)

    def one(ch, optional: bool) -> None:
        names = []
        if isinstance(ch, ast.Import):
            names = [a.name for a in ch.names]
        elif isinstance(ch, ast.ImportFrom) and ch.level == 0 and ch.module:
            names = [ch.module]
        for n in names:
            top = n.split(".")[0]
            if top not in sys.stdlib_module_names and top not in FIRST_PARTY and top != "__future__":
                out[top] = out.get(top, True) and optional
        visit(ch, optional)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return out


def _declared() -> dict[str, set[str]]:
    """``{"": core distributions, extra: its distributions (self-references resolved)}``,
    names normalised as PEP 503."""
    import re

    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    proj = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()  # noqa: E731
    raw = {"": proj["dependencies"], **proj["optional-dependencies"]}

    def resolve(extra: str, seen=()) -> set[str]:
        out = set()
        for spec in raw[extra]:
            req = Requirement(spec)
            if norm(req.name) == norm(proj["name"]):
                for e in req.extras:
                    out |= resolve(e, seen + (extra,)) if e not in seen else set()
            else:
                out.add(norm(req.name))
        return out

    return {e: resolve(e) for e in raw}


def _distribution(name: str) -> str:
    import importlib.metadata
    import re

    dists = importlib.metadata.packages_distributions().get(name)
    if not dists:
        pytest.fail(f"import {name!r} is not installed in the dev environment (pip install -e '.[dev]')")
    return re.sub(r"[-_.]+", "-", sorted(dists)[0]).lower()


def test_declared_dependencies_match_the_imports():
    """Every third-party import is declared in the core or in its feature's extra, and every
    declared dependency is imported where it is declared (`pip install .` stays small)."""
    from fnmatch import fnmatch

    declared = _declared()
    declared.pop("dev")  # tooling, not imported by the package
    missing, used = [], {e: set() for e in declared}
    modules = sorted(REPO.glob("lm_eval_medsplit/**/*.py")) + sorted(REPO.glob("inspect_tasks/**/*.py")) \
        + sorted(REPO.glob("task_yaml/**/*.py"))
    for path in modules:
        rel = path.relative_to(REPO).as_posix()
        for name, optional in _imports(path).items():
            extra = next((e for g, n, e in FEATURE_IMPORTS if fnmatch(rel, g) and n in ("*", name)), "")
            dist = _distribution(name)
            used.setdefault(extra, set()).add(dist)
            if not optional and dist not in declared[""] | declared.get(extra, set()):
                missing.append(f"{rel} imports {name} ({dist}): declare it in "
                               f"{'[project] dependencies' if not extra else f'the {extra!r} extra'}")
    unused = [f"{dist} in {'the core' if not e else f'the {e!r} extra'}"
              for e, dists in declared.items() if e != "all"
              for dist in sorted(dists - used.get(e, set()))
              if (e, dist) not in NOT_IMPORTED]
    assert not missing, "\n".join(missing)
    assert not unused, "declared but imported by no module of that scope: " + ", ".join(unused)
    # [all] holds every feature extra
    features = {e for _, _, e in FEATURE_IMPORTS}
    assert features <= set(declared) and all(declared[e] <= declared["all"] for e in features)


def test_labelling_needs_no_scikit_learn(tmp_path):
    """`medsplit classify` (the embedded model) runs with scikit-learn unimportable, as after a
    plain `pip install .`; `classifier train` then names the extra to install."""
    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps({"id": "1", "question": "A 50-year-old man has chest pain. Next step?",
                             "options": ["ECG", "Discharge"]}) + "\n")
    block = "import sys; sys.modules['sklearn'] = None; from lm_eval_medsplit.cli import main; "
    out = subprocess.run([sys.executable, "-c", block + f"raise SystemExit(main(['classify', {str(f)!r}, "
                          f"'--out', {str(tmp_path / 'o.jsonl')!r}]))"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "o.jsonl").read_text())["reasoning_prob"] > 0
    out = subprocess.run([sys.executable, "-c", block + f"raise SystemExit(main(['classifier', 'train', "
                          f"'--data', {str(f)!r}, '--out', {str(tmp_path / 'm.npz')!r}]))"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "lm-eval-medsplit[classifier]" in out.stderr


def test_cache_folder_honours_xdg_cache_home_and_medsplit_cache_wins(tmp_path, monkeypatch):
    from lm_eval_medsplit.dataset import cache_dir

    monkeypatch.delenv("MEDSPLIT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert cache_dir() == tmp_path / "xdg" / "lm_eval_medsplit"
    monkeypatch.setenv("MEDSPLIT_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


# (module, private name) imports of another package's `_`-prefixed modules, each with its reason.
# An entry that no longer matches an import fails too, so the list cannot go stale.
PRIVATE_IMPORTS: dict = {}


def test_no_private_module_of_another_package_is_imported():
    import ast

    found = set()
    for path in sorted(REPO.glob("lm_eval_medsplit/**/*.py")) + sorted(REPO.glob("inspect_tasks/**/*.py")):
        rel = path.relative_to(REPO).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for n in names:
                if n.split(".")[0] not in FIRST_PARTY and any(p.startswith("_") for p in n.split(".")[1:]):
                    found.add((rel, n))
    assert not found - set(PRIVATE_IMPORTS), f"private modules of other packages imported: {sorted(found - set(PRIVATE_IMPORTS))}"
    assert not set(PRIVATE_IMPORTS) - found, f"stale PRIVATE_IMPORTS entries: {sorted(set(PRIVATE_IMPORTS) - found)}"
