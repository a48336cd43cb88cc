"""``medsplit lm-eval path|tasks|status|register|unregister``: the lm-evaluation-harness
task folder and its automatic registration.

``tasks --write DIR`` gives a JSONL's own benchmarks (names outside the registry) real
lm-eval tasks: for each, the packaged task YAML of the same subset and mode with the
benchmark, task name and default source filled in, for ``lm_eval --include_path DIR``
(prompt, scoring and metrics stay the package's; ``--metadata`` still overrides the
source)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from lm_eval_medsplit.commands.common import add_source_args

EPILOG = """\
how lm-eval finds the medsplit tasks:
  pip installs lm_eval_medsplit_tasks.pth into site-packages; at Python start-up it
  hooks lm-eval's TaskManager so that `lm_eval --tasks medsplit_reasoning` works with
  no flag. Off switch: MEDSPLIT_LM_EVAL_AUTOREGISTER=0, or `medsplit lm-eval unregister`.
  Without the hook: lm_eval --include_path "$(medsplit lm-eval path)" --tasks ...

examples:
  medsplit lm-eval path
  medsplit lm-eval status
  medsplit lm-eval tasks --source ../shared/data/raw --subset reasoning
  medsplit lm-eval tasks --source examples/mine.jsonl --write my-tasks/
  medsplit lm-eval register        # editable installs (pip install -e) get no .pth
"""

PATH_EPILOG = """\
examples:
  medsplit lm-eval path
  lm_eval --include_path "$(medsplit lm-eval path)" --tasks medsplit_reasoning ...
"""

TASKS_EPILOG = """\
Registry benchmarks (medqa, pubmedqa, ...) have tasks in the package. Your own JSONL with
other benchmark names (e.g. "benchmark": "mine", or the file stem) gets task YAMLs with
--write DIR, which lm-eval then reads with --include_path DIR; the YAMLs name the source,
so --metadata is optional (it still wins when given).

examples:
  medsplit lm-eval tasks --source ../shared/data/raw                     # clean cot tasks
  medsplit lm-eval tasks --source ../shared/data/raw --subset reasoning --mode all
  lm_eval ... --metadata '{"source": "../shared/data/raw"}' \\
      --tasks "$(medsplit lm-eval tasks --source ../shared/data/raw --subset reasoning)"
  medsplit lm-eval tasks --source examples/mine.jsonl --write my-tasks/
  lm_eval ... --include_path my-tasks/ --tasks medsplit_mine_reasoning,medsplit_mine_knowledge
"""

STATUS_EPILOG = """\
examples:
  medsplit lm-eval status
  medsplit lm-eval status --json
  MEDSPLIT_LM_EVAL_AUTOREGISTER=0 medsplit lm-eval status    # the switch, off
"""

REGISTER_EPILOG = """\
examples:
  medsplit lm-eval register                  # after pip install -e . (no .pth written)
  medsplit lm-eval register --site-packages /path/to/venv/lib/python3.11/site-packages
"""

UNREGISTER_EPILOG = """\
examples:
  medsplit lm-eval unregister                # lm_eval then needs --include_path
  medsplit lm-eval register                  # undo
"""


def register(sub) -> None:
    p = sub.add_parser("lm-eval", help="lm-evaluation-harness task folder and registration",
                       description="The lm-evaluation-harness tasks of this package.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    lsub = p.add_subparsers(dest="lm_eval_command", metavar="ACTION", required=True)

    raw = argparse.RawDescriptionHelpFormatter
    pp = lsub.add_parser("path", help="print the task folder (for --include_path)",
                         description="Print the folder of the packaged task YAMLs.",
                         epilog=PATH_EPILOG, formatter_class=raw)
    pp.set_defaults(func=cmd_path)

    t = lsub.add_parser("tasks", help="print the task names a source can run, comma-separated",
                        description="Task names for the benchmarks present in a source (a local "
                                    "directory may hold fewer than the 11 of the hub), ready for "
                                    "`lm_eval --tasks`; with --write, task YAMLs for a JSONL's "
                                    "own benchmarks.",
                        epilog=TASKS_EPILOG, formatter_class=raw)
    add_source_args(t)
    t.add_argument("--mode", choices=("cot", "adversarial", "mc", "all"), default="cot",
                   help="cot (default): generative step by step, the clean tasks; adversarial: "
                        "prefilled incorrect traces (..._adversarial); mc: log-likelihood over "
                        "the letters, for base models (..._mc); all: the three")
    t.add_argument("--subset", choices=("reasoning", "knowledge", "all"), default="all",
                   help="reasoning, knowledge, or all (default: both)")
    t.add_argument("--write", type=Path, default=None, metavar="DIR",
                   help="write task YAMLs for the source's own (non-registry) benchmarks into "
                        "DIR, for lm_eval --include_path DIR; they name the source")
    t.set_defaults(func=cmd_tasks)

    s = lsub.add_parser("status", help="show whether lm-eval finds the tasks without a flag",
                        description="Whether `lm_eval` finds the medsplit tasks with no flag.",
                        epilog=STATUS_EPILOG, formatter_class=raw)
    s.add_argument("--json", action="store_true", help="print the state as JSON")
    s.set_defaults(func=cmd_status)

    r = lsub.add_parser("register", help="write the .pth hook into site-packages",
                        description="Write lm_eval_medsplit_tasks.pth into site-packages.",
                        epilog=REGISTER_EPILOG, formatter_class=raw)
    r.add_argument("--site-packages", type=Path, default=None,
                   help="target folder (default: this interpreter's purelib)")
    r.set_defaults(func=cmd_register)

    u = lsub.add_parser("unregister", help="remove the .pth hook from site-packages",
                        description="Remove lm_eval_medsplit_tasks.pth from site-packages.",
                        epilog=UNREGISTER_EPILOG, formatter_class=raw)
    u.add_argument("--site-packages", type=Path, default=None,
                   help="folder to clean (default: every site-packages folder of this interpreter)")
    u.set_defaults(func=cmd_unregister)


def _site_dirs() -> list[Path]:
    import site
    import sysconfig

    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    try:
        dirs += site.getsitepackages()
    except AttributeError:  # pragma: no cover - virtualenv's old site.py
        pass
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    out: list[Path] = []
    for d in dirs:
        p = Path(d)
        if p not in out:
            out.append(p)
    return out


def pth_files() -> list[Path]:
    from lm_eval_medsplit._lm_eval_hook import PTH_NAME

    return [d / PTH_NAME for d in _site_dirs() if (d / PTH_NAME).is_file()]


def cmd_path(args) -> int:
    from lm_eval_medsplit._lm_eval_hook import task_dir

    print(task_dir())
    return 0


def cmd_tasks(args) -> int:
    from lm_eval_medsplit.commands.common import open_source
    from lm_eval_medsplit.task_yaml import all_task_names

    src = open_source(args)
    modes = ("cot", "adversarial", "mc") if args.mode == "all" else (args.mode,)
    subsets = ("reasoning", "knowledge") if args.subset == "all" else (args.subset,)
    names = all_task_names(src.benchmarks(), modes, subsets)
    if args.write is not None:
        written = write_task_yamls(src, args.write, modes, subsets, typed=args.source)
        print(f"wrote {len(written)} task YAMLs to {args.write} (lm_eval --include_path "
              f"{args.write})", file=sys.stderr)
    else:
        own = own_benchmarks(src)
        if own:
            print(f"note: {', '.join(own)} not in the registry: its tasks exist once written "
                  f"with --write DIR and read with lm_eval --include_path DIR", file=sys.stderr)
    print(",".join(names))
    return 0


def own_benchmarks(src) -> list[str]:
    """The benchmarks of ``src`` outside the registry (they have no packaged tasks)."""
    from lm_eval_medsplit import registry

    return [b for b in src.benchmarks() if registry.find_benchmark(b) is None]


#: Packaged task whose YAML is the template for a user benchmark's task (same body).
_TEMPLATE_BENCHMARK = "medqa"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def user_task_yaml(benchmark: str, subset: str, mode: str, source: str) -> str:
    """The YAML of task ``medsplit_{benchmark}_{subset}[...]`` for a benchmark outside the
    registry: the packaged task of the same subset and mode with the benchmark, the name
    and the default source changed (so its prompt, scoring and metrics stay the package's)."""
    from lm_eval_medsplit._lm_eval_hook import task_dir
    from lm_eval_medsplit.task_yaml import task_name

    template = Path(task_dir()) / f"{task_name(_TEMPLATE_BENCHMARK, subset, mode)}.yaml"
    lines = template.read_text(encoding="utf-8").splitlines()
    out = [f"# Written by `medsplit lm-eval tasks --write` for benchmark {benchmark!r} of {source}.",
           "# Source: this file's metadata.source; --metadata '{\"source\": ...}' overrides it."]
    for line in lines:
        if line.startswith("#"):
            continue
        if line.startswith("task: "):
            line = f"task: {task_name(benchmark, subset, mode)}"
        elif line.strip() == f"benchmark: {_TEMPLATE_BENCHMARK}":
            line = line.replace(_TEMPLATE_BENCHMARK, benchmark)
        elif line.startswith("include: "):  # a shared template of the packaged folder
            line = f"include: {Path(task_dir()) / line.split(':', 1)[1].strip()}"
        out.append(line)
        if line == "metadata:":
            out.append(f"  source: {json.dumps(source)}")
    return "\n".join(out) + "\n"


def write_task_yamls(src, out_dir: Path, modes, subsets, *, typed: str | None = None) -> list[Path]:
    """Task YAMLs for every benchmark of ``src`` that is not in the registry (the registry
    ones are packaged), written into ``out_dir``; returns the files written."""
    from lm_eval_medsplit.cli import CLIError
    from lm_eval_medsplit.task_yaml import task_name

    own = own_benchmarks(src)
    if not own:
        raise CLIError(f"--write: every benchmark of {typed or src.location} is in the registry "
                       f"and has packaged tasks; nothing to write")
    bad = [b for b in own if not _SAFE_NAME.match(b)]
    if bad:
        raise CLIError(f"--write: benchmark name {bad[0]!r} of {typed or src.location} cannot name "
                       f"an lm-eval task; use letters, digits, '_', '.', '-' in the 'benchmark' field")
    # the source as an absolute path (lm-eval runs from any folder), symlinks as typed
    source = os.path.abspath(typed) if typed and typed != "hub" else src.location
    written = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for b in own:
            for mode in modes:
                for subset in subsets:
                    path = out_dir / f"{task_name(b, subset, mode)}.yaml"
                    path.write_text(user_task_yaml(b, subset, mode, source), encoding="utf-8")
                    written.append(path)
    except OSError as e:
        raise CLIError(f"--write {out_dir}: {e}") from None
    return written


def status() -> dict:
    from importlib import metadata

    from lm_eval_medsplit import _lm_eval_hook as hook

    try:
        lm_eval_version = metadata.version("lm_eval")
    except metadata.PackageNotFoundError:
        lm_eval_version = None
    files = pth_files()
    folder = hook.task_dir()
    return {
        "lm_eval_version": lm_eval_version,
        "task_dir": folder,
        "task_yamls": len(list(Path(folder).glob("*.yaml"))),
        "pth_files": [str(p) for p in files],
        "switch": {"variable": hook.ENV_SWITCH, "value": os.environ.get(hook.ENV_SWITCH),
                   "enabled": hook.enabled()},
        "hook_active_in_this_process": hook.installed(),
        "automatic": bool(files) and hook.enabled() and lm_eval_version is not None,
    }


def cmd_status(args) -> int:
    st = status()
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    missing = "not installed (pip install 'lm-eval-medsplit[lm-eval]')"
    print(f"lm-eval:        {st['lm_eval_version'] or missing}")
    print(f"task folder:    {st['task_dir']} ({st['task_yamls']} YAML files)")
    print(f".pth hook:      {', '.join(st['pth_files']) or 'not installed (medsplit lm-eval register)'}")
    sw = st["switch"]
    print(f"switch:         {sw['variable']}={sw['value'] if sw['value'] is not None else '(unset)'}"
          f" -> {'on' if sw['enabled'] else 'off'}")
    if st["automatic"]:
        print("lm_eval finds the medsplit tasks with no flag.")
    else:
        print(f"lm_eval needs: --include_path {st['task_dir']}")
    sys.stdout.flush()
    return 0


def cmd_register(args) -> int:
    from lm_eval_medsplit._lm_eval_hook import PTH_LINE, PTH_NAME
    from lm_eval_medsplit.cli import CLIError

    target_dir = args.site_packages or _site_dirs()[0]
    target = Path(target_dir) / PTH_NAME
    if target.is_file() and target.read_text(encoding="utf-8") == PTH_LINE:
        print(f"already registered: {target}")
        return 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(PTH_LINE, encoding="utf-8")
    except OSError as e:
        raise CLIError(f"cannot write {target}: {e}") from None
    print(f"wrote {target}")
    return 0


def cmd_unregister(args) -> int:
    from lm_eval_medsplit._lm_eval_hook import PTH_NAME
    from lm_eval_medsplit.cli import CLIError

    files = ([Path(args.site_packages) / PTH_NAME] if args.site_packages else pth_files())
    files = [f for f in files if f.is_file()]
    if not files:
        print("nothing to remove")
        return 0
    for f in files:
        try:
            f.unlink()
        except OSError as e:
            raise CLIError(f"cannot remove {f}: {e}") from None
        print(f"removed {f}")
    return 0
