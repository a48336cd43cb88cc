"""After a plain (non-editable) `pip install "lm-eval-medsplit[lm-eval]"` into a fresh
venv, `lm_eval --tasks medsplit_...` finds the tasks from any directory with no flag,
the switch turns that off, and uninstalling removes the hook. And the README's install
line for the main job, run exactly as written in an empty venv (packages from the index,
here the local mirror), gives what `lm_eval --model hf` needs.

The fresh venv sees the development venv's third-party packages (lm-eval, torch, ...)
through a .pth file pointing at a filtered copy of its site-packages (symlinks, without
lm_eval_medsplit), so nothing is downloaded; lm_eval_medsplit itself comes only from the
wheel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")



def _run(cmd, **kw):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory, source_tree) -> Path:
    tmp = tmp_path_factory.mktemp("lm_eval_install")
    wheels = tmp / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", source_tree, "--no-deps", "--no-build-isolation", "-q",
          "-w", wheels])
    (wheel,) = wheels.glob("lm_eval_medsplit-*.whl")
    # third-party packages of this venv, minus our own distribution
    deps = tmp / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(("lm_eval_medsplit", "__editable__", "_lm_eval_medsplit")) \
                or entry.suffix == ".pth":
            continue
        (deps / entry.name).symlink_to(entry)
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv])
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (site / "_dev_deps.pth").write_text(f"{deps}\n")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # the venv's own (ensurepip) setuptools would shadow the dev venv's newer one, which
    # torch requires (setuptools>=77); without it the dev venv's copy is the one seen
    _run([py, "-m", "pip", "uninstall", "-y", "-q", "setuptools"], env=env, cwd=tmp)
    _run([py, "-m", "pip", "install", "-q", "--no-index", f"{wheel}[lm-eval]"], env=env, cwd=tmp)
    return venv


REPO = Path(__file__).resolve().parents[1]


def readme_install_line() -> str:
    """The install command of the README's main job: the `pip install ... [lm-eval]` line
    of the first code block under "## Set up", without its trailing comment."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)\n```", text[text.index("## Set up"):], re.S).group(1)
    (line,) = [ln for ln in block.splitlines() if ln.startswith("pip install") and "[lm-eval]" in ln]
    return re.sub(r"\s+#.*$", "", line)


@pytest.fixture(scope="module")
def data(raw_dir, tmp_path_factory):
    """A tiny local model and a 12-question hub-layout source (real PubMedQA records)."""
    tmp = tmp_path_factory.mktemp("lm_eval_install_data")
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        from tiny_models import make_tiny_causal_lm
    finally:
        sys.path.pop(0)
    model = make_tiny_causal_lm(tmp / "tiny")
    from lm_eval_medsplit.adversarial import add_offline_traces
    from lm_eval_medsplit.sources import resolve_source, write_jsonl

    records, _ = resolve_source(raw_dir).load("pubmedqa")
    records = records[:12]
    for i, r in enumerate(records):
        r.reasoning_prob, r.is_reasoning, r.reasoning_threshold = 0.9 if i % 2 else 0.1, bool(i % 2), 0.5
    add_offline_traces(records)
    write_jsonl(records, tmp / "hub" / "pubmedqa" / "test.jsonl")
    (tmp / "hub" / "manifest.json").write_text(json.dumps({"revision": "install-test"}))
    return model, tmp / "hub"


def _lm_eval_tiny_run(lm_eval_cmd: list, model: Path, hub: Path, out: Path, *, env, cwd) -> dict:
    """``lm_eval --model hf`` on the tiny model and the local source (the tasks found with
    no --include_path): checks the metric and the source's revision, returns the task's config."""
    _run([*lm_eval_cmd, "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
          "--device", "cpu", "--tasks", "medsplit_pubmedqa_reasoning", "--limit", "2",
          "--metadata", json.dumps({"source": str(hub)}), "--gen_kwargs", "max_gen_toks=4",
          "--log_samples", "--output_path", out], env=env, cwd=cwd, timeout=900)
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())
    assert "acc,score" in results["results"]["medsplit_pubmedqa_reasoning"]
    cfg = results["configs"]["medsplit_pubmedqa_reasoning"]
    assert cfg["metadata"]["medsplit"]["revision"] == "install-test"
    return cfg


@pytest.mark.slow
def test_lm_eval_finds_the_tasks_with_no_flag(fresh_venv, data, tmp_path):
    model, hub = data
    py = fresh_venv / "bin" / "python"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    env.pop("MEDSPLIT_LM_EVAL_AUTOREGISTER", None)
    env.pop("PYTHONPATH", None)
    work = tmp_path / "anywhere"
    work.mkdir()
    # the installed package is the wheel, and the hook file sits in site-packages
    st = json.loads(_run([fresh_venv / "bin" / "medsplit", "lm-eval", "status", "--json"],
                         env=env, cwd=work))
    assert str(fresh_venv) in st["task_dir"] and st["automatic"], st
    assert st["pth_files"] and str(fresh_venv) in st["pth_files"][0]
    # the command from the issue, legacy form (no `run`), no --include_path
    out = work / "out"
    cfg = _lm_eval_tiny_run([py, "-m", "lm_eval"], model, hub, out, env=env, cwd=work)
    assert str(fresh_venv) in cfg["metadata"]["config_source"]  # the wheel's YAML
    assert len(list(out.rglob("samples_medsplit_pubmedqa_reasoning_*.jsonl"))) == 1


@pytest.mark.slow
def test_switch_off_and_uninstall(fresh_venv, tmp_path):
    py = fresh_venv / "bin" / "python"
    probe = ("import lm_eval.tasks.manager as m; "
             "print(getattr(m.TaskManager.__init__, '_medsplit_autoregister', False))")
    env = {k: v for k, v in os.environ.items() if k not in ("MEDSPLIT_LM_EVAL_AUTOREGISTER", "PYTHONPATH")}
    assert _run([py, "-c", probe], env=env, cwd=tmp_path).strip() == "True"
    off = {**env, "MEDSPLIT_LM_EVAL_AUTOREGISTER": "0"}
    assert _run([py, "-c", probe], env=off, cwd=tmp_path).strip() == "False"
    pth = Path(json.loads(_run([fresh_venv / "bin" / "medsplit", "lm-eval", "status", "--json"],
                               env=env, cwd=tmp_path))["pth_files"][0])
    _run([py, "-m", "pip", "uninstall", "-y", "-q", "lm-eval-medsplit"], env=env, cwd=tmp_path)
    assert not pth.exists()
    # a Python start-up without the package is clean
    proc = subprocess.run([str(py), "-c", "print('ok')"], capture_output=True, text=True, env=env)
    assert proc.stdout.strip() == "ok" and proc.stderr == ""


@pytest.mark.slow
def test_readme_install_line_in_a_fresh_venv(source_tree, data, tmp_path):
    """The README's install line, as written, in an empty venv from a copy of the
    checkout; then `lm_eval --model hf` (no other install) on a tiny local model and a
    local source, with the medsplit tasks found with no flag."""
    line = readme_install_line()
    assert line.startswith("pip install torch==") and '".[lm-eval]"' in line, line
    checkout = tmp_path / "checkout"
    shutil.copytree(source_tree, checkout)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv])
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "MEDSPLIT_LM_EVAL_AUTOREGISTER", "MEDSPLIT_SOURCE")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
               PIP_DISABLE_PIP_VERSION_CHECK="1")
    _run(["bash", "-c", line], cwd=checkout, env=env, timeout=1800)
    # nothing of the dev venv leaks in: the fresh venv has its own torch and transformers
    py = venv / "bin" / "python"
    where = _run([py, "-c", "import torch, transformers, lm_eval, lm_eval_medsplit; "
                            "print(torch.__file__); print(lm_eval_medsplit.__file__)"], env=env,
                 cwd=tmp_path)
    assert all(str(venv) in p for p in where.split()), where
    model, hub = data
    run_env = {**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    _lm_eval_tiny_run([venv / "bin" / "lm_eval"], model, hub, tmp_path / "out", env=run_env, cwd=tmp_path)
