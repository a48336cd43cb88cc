"""A plain (non-editable) `pip install "<repo>[inspect]"` into a fresh venv makes
`inspect eval lm_eval_medsplit/medsplit_reasoning` resolve through the entry point.

Slow: it installs inspect-ai and the package's dependencies from PyPI (no torch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hub_layout import write_hub_dir  # noqa: E402
from test_inspect_tasks import (  # noqa: E402
    N_PER_BENCH,
    _env,
    _label,
    _one_log,
    metrics_of,
    mock_provider_env,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory, source_tree) -> Path:
    root = tmp_path_factory.mktemp("inspect_venv")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", f"{source_tree}[inspect]"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return env_dir


def test_fresh_install_registers_the_entry_point(fresh_venv, tmp_path):
    py = fresh_venv / "bin" / "python"
    code = ("import json, importlib.metadata as im, lm_eval_medsplit, "
            "lm_eval_medsplit.inspect_tasks._registry as reg; "
            "print(json.dumps({'eps': [(e.name, e.value) for e in im.entry_points(group='inspect_ai')], "
            "'file': lm_eval_medsplit.__file__, 'tasks': reg.__file__}))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(py), "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, check=True).stdout
    info = json.loads(out)
    assert ["lm_eval_medsplit", "lm_eval_medsplit.inspect_tasks._registry"] in info["eps"]
    # the installed copy, not the source tree
    site = str(fresh_venv.resolve())
    assert info["file"].startswith(site) and info["tasks"].startswith(site)
    assert "/lm_eval_medsplit/inspect_tasks/_registry.py" in info["tasks"]


def test_fresh_install_inspect_eval_resolves_and_succeeds(fresh_venv, raw_dir, tmp_path):
    hub = write_hub_dir(raw_dir, tmp_path / "hub", ("medqa",), label=_label, revision="test-rev-1",
                        limit=N_PER_BENCH)
    log_dir = tmp_path / "logs"
    env = mock_provider_env(tmp_path, _env(tmp_path))
    env["PATH"] = f"{fresh_venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(
        [str(fresh_venv / "bin" / "inspect"), "eval", "lm_eval_medsplit/medsplit_reasoning",
         "--model", "medsplit_test/pattern", "-T", f"source={hub}",
         "--log-dir", str(log_dir), "--log-format", "json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = _one_log(log_dir)
    assert log.status == "success", log.error
    assert log.eval.task_registry_name == "lm_eval_medsplit/medsplit_reasoning"
    assert 0 < len(log.samples) < N_PER_BENCH
    assert {s.metadata["subset"] for s in log.samples} == {"reasoning"}
    assert "medqa_accuracy" in metrics_of(log)
