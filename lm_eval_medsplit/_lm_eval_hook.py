"""Automatic registration of the medsplit task YAMLs with lm-evaluation-harness.

lm-eval (0.4.x) discovers tasks only in its own folder and in ``--include_path`` /
``TaskManager(include_path=...)``; it has no entry point for task packages. So that
``lm_eval --tasks medsplit_reasoning`` works right after ``pip install``, the wheel
installs one line into ``site-packages``, ``lm_eval_medsplit_tasks.pth`` (:data:`PTH_NAME`,
content :data:`PTH_LINE`). Python runs it at start-up; it calls :func:`install`, which
only puts a tiny finder on ``sys.meta_path`` -- nothing of lm-eval or of this package's
data is imported. When (and only when) a process imports ``lm_eval.tasks.manager``, the
finder wraps ``TaskManager.__init__`` so that a TaskManager built *with* lm-eval's
default tasks (``include_defaults=True``, what the ``lm_eval`` command does) also indexes
our folder, placed before any user ``include_path`` so a user's own task of the same name
still wins. ``TaskManager(include_defaults=False, ...)`` is left untouched.

Switch it off with ``MEDSPLIT_LM_EVAL_AUTOREGISTER=0`` in the environment, or remove the
file with ``medsplit lm-eval unregister``; ``medsplit lm-eval status`` shows the state.

In the ``lm_eval`` command with ``medsplit`` tasks, the wrapped ``__init__`` also checks
the data source (``--metadata '{"source": ...}'`` / ``MEDSPLIT_SOURCE``; the hub reachable)
before lm-eval loads the model, and stops with one line in lm-eval's syntax
(:func:`check_source_before_model`); a local ``hf`` model whose context cannot hold the
tasks' 4096-token generation budget is stopped there too, with the ``--gen_kwargs`` that
fixes it.

Only :mod:`sys` and :mod:`os` are imported at start-up; this file is also read by
``setup.py`` (with :func:`runpy.run_path`) to write the ``.pth`` into the wheel.
"""

import os
import sys

ENV_SWITCH = "MEDSPLIT_LM_EVAL_AUTOREGISTER"
PTH_NAME = "lm_eval_medsplit_tasks.pth"
#: The one line of :data:`PTH_NAME`: a no-op when switched off or when this package is
#: gone (a stale file never breaks Python start-up).
PTH_LINE = (
    "import os; os.environ.get('" + ENV_SWITCH + "', '1').strip().lower() in "
    "('0', 'false', 'no', 'off') or exec(\"try:\\n from lm_eval_medsplit._lm_eval_hook "
    "import install\\nexcept ImportError:\\n pass\\nelse:\\n install()\")\n"
)
#: Modules after whose import ``TaskManager`` is patched (0.4.13 defines it in
#: ``lm_eval.tasks.manager``; earlier 0.4.x releases in ``lm_eval.tasks``).
TARGETS = ("lm_eval.tasks.manager", "lm_eval.tasks")
_MARK = "_medsplit_autoregister"


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def task_dir() -> str:
    """The folder of the medsplit task YAMLs (``lm_eval_medsplit.task_yaml``)."""
    import importlib.util

    spec = importlib.util.find_spec("lm_eval_medsplit.task_yaml")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("lm_eval_medsplit.task_yaml is missing from this installation")
    return os.path.realpath(list(spec.submodule_search_locations)[0])


def augment_include_path(include_path, include_defaults: bool = True):
    """``include_path`` with the medsplit folder placed first, when lm-eval's default
    tasks are indexed and the folder is not there yet; otherwise unchanged."""
    if not include_defaults or not enabled():
        return include_path
    ours = task_dir()
    if include_path is None:
        paths = []
    elif isinstance(include_path, (list, tuple)):
        paths = list(include_path)
    else:
        paths = [include_path]
    if any(os.path.realpath(os.fspath(p)) == ours for p in paths):
        return include_path
    return [ours, *paths]


def patch(module) -> bool:
    """Wrap ``module.TaskManager.__init__`` (once). Returns whether it is patched."""
    tm = getattr(module, "TaskManager", None)
    init = getattr(tm, "__init__", None)
    if tm is None or init is None:
        return False
    if getattr(init, _MARK, False):
        return True
    import functools
    import inspect

    try:
        sig = inspect.signature(init)
    except (TypeError, ValueError):
        return False
    if "include_path" not in sig.parameters:
        return False  # an lm-eval we do not know how to extend: leave it alone

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        metadata = None
        try:
            bound = sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            args_ = bound.arguments
            metadata = args_.get("metadata")
            args_["include_path"] = augment_include_path(
                args_.get("include_path"), bool(args_.get("include_defaults", True)))
            args, kwargs = bound.args[1:], bound.kwargs
        except Exception:  # never let registration break lm-eval
            pass
        check_source_before_model(metadata)
        init(self, *args, **kwargs)

    setattr(__init__, _MARK, True)
    tm.__init__ = __init__
    return True


def _lm_eval_cli_tasks():
    """The ``--tasks`` value when this process is the ``lm_eval`` command, else None."""
    argv = sys.argv
    prog = os.path.basename(argv[0]) if argv else ""
    if prog not in ("lm_eval", "lm-eval") and not argv[0].endswith(os.path.join("lm_eval", "__main__.py")):
        return None
    return _argv_value("--tasks")


def _argv_value(flag: str):
    argv = sys.argv
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def check_budget_before_model() -> None:
    """``lm_eval --model hf`` on a local model folder whose context is no longer than the
    tasks' generation budget (4096 new tokens; lm-eval would stop after loading the model
    with "max tokens to generate ... must be less than ..."): stop first, with the flag
    that fixes it. Only where the budget and context are known from the command line and
    the folder's config.json."""
    if _argv_value("--model") != "hf" or _argv_value("--config") is not None:
        return
    gen = _argv_value("--gen_kwargs") or ""
    margs = _argv_value("--model_args") or ""
    if "max_gen_toks" in gen or "max_length" in margs:
        return
    pretrained = next((kv.split("=", 1)[1] for kv in margs.split(",") if kv.startswith("pretrained=")),
                      None)
    config = os.path.join(pretrained, "config.json") if pretrained else None
    if not config or not os.path.isfile(config):
        return
    import json

    try:
        with open(config, encoding="utf-8") as f:
            cfg = json.load(f)
        cfg = cfg.get("text_config") or cfg
        context = next(int(cfg[k]) for k in ("n_positions", "max_position_embeddings", "n_ctx")
                       if cfg.get(k) is not None)
        from lm_eval_medsplit.task_yaml import DEFAULT_MAX_GEN_TOKS
    except Exception:  # an unusual config: lm-eval decides
        return
    if context <= DEFAULT_MAX_GEN_TOKS:
        print(f"lm_eval: the medsplit tasks generate up to {DEFAULT_MAX_GEN_TOKS} new tokens and "
              f"{pretrained} has a {context}-token context: add --gen_kwargs "
              f"max_gen_toks={max(16, context // 4)} (any value that leaves room for the prompt)",
              file=sys.stderr)
        raise SystemExit(2)


def check_source_before_model(metadata) -> None:
    """In the ``lm_eval`` command, with medsplit tasks requested: check the data source
    (a path that exists and has a known layout; the hub reachable, or HF_HUB_OFFLINE=1)
    when the TaskManager is built, which is before the model loads, and stop with one line
    in lm-eval's syntax. Python callers get the same errors when the tasks load."""
    tasks = _lm_eval_cli_tasks()
    if not tasks or "medsplit" not in tasks:
        return
    check_budget_before_model()
    try:
        from lm_eval_medsplit.lm_eval_tasks import MedsplitTaskError, source_from_metadata
    except ImportError:
        return
    try:
        source_from_metadata(metadata, check_hub=True)
    except MedsplitTaskError as e:
        print(f"lm_eval: {e}", file=sys.stderr)
        raise SystemExit(2) from None


class _Loader:
    """Delegates to the real loader and patches the module right after it ran."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        return getattr(self._loader, name)

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create else None

    def exec_module(self, module):
        self._loader.exec_module(module)
        try:
            patch(module)
        except Exception:
            pass


class _Finder:
    """A ``sys.meta_path`` finder that answers only for :data:`TARGETS`."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in TARGETS:
            return None
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, _Finder):
                continue
            find = getattr(finder, "find_spec", None)
            if find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None


def install() -> None:
    """Register with lm-eval: patch now if it is already imported, else on import."""
    if not enabled():
        return
    for name in TARGETS:
        mod = sys.modules.get(name)
        if mod is not None:
            patch(mod)
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def installed() -> bool:
    """Whether this process has the finder (i.e. the ``.pth`` or :func:`install` ran)."""
    return any(isinstance(f, _Finder) for f in sys.meta_path)
