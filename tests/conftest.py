"""Shared fixtures. Real data is read from ``../shared/data`` (or $MEDSPLIT_SHARED_DATA),
never copied into the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDSPLIT_SHARED_DATA", REPO.parent / "shared" / "data"))
RAW = SHARED_DATA / "raw"


def pytest_configure(config):
    # tests never reach the hub; fail fast instead of retrying the network
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set MEDSPLIT_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def raw_dir(shared_data) -> Path:
    return shared_data / "raw"


@pytest.fixture(scope="session")
def raw_source(raw_dir):
    """The raw directory as a resolved source (stateless: each ``load`` reads afresh)."""
    from lm_eval_medsplit.sources import resolve_source

    return resolve_source(raw_dir)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny randomly initialised Llama with a chat template, saved to a local folder
    (tests/tiny_models.py): what lm-eval's ``hf``, Inspect's ``hf/`` and TRL load offline."""
    from tiny_models import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def source_tree(tmp_path_factory) -> Path:
    """A private copy of the checkout (tracked and untracked-but-not-ignored files) to build
    wheels from. pip builds a local directory in place (``build/``, ``*.egg-info``), so two
    xdist workers building the checkout itself at once break each other's wheel."""
    dest = tmp_path_factory.mktemp("source") / "lm-eval-medsplit"
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:  # not a git checkout: copy everything but build leftovers
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"))
        return dest
    for rel in listed.stdout.splitlines():
        src = REPO / rel
        if src.is_file():  # listed but deleted in the working tree: skip
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest
