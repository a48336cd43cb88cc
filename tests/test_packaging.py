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
    # the installed package is the wheel, not the checkout
    where = subprocess.run([str(py), "-c", "import lm_eval_medsplit.task_yaml as t; print(t.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert str(venv) in where
