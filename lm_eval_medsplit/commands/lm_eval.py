"""``medsplit lm-eval path|tasks|status|register|unregister``: the lm-evaluation-harness
task folder and its automatic registration."""

from __future__ import annotations

import argparse
import json
import os
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
  medsplit lm-eval tasks --source ../shared/data/raw --mode cot
  medsplit lm-eval register        # editable installs (pip install -e) get no .pth
"""


def register(sub) -> None:
    p = sub.add_parser("lm-eval", help="lm-evaluation-harness task folder and registration",
                       description="The lm-evaluation-harness tasks of this package.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    lsub = p.add_subparsers(dest="lm_eval_command", metavar="ACTION", required=True)

    pp = lsub.add_parser("path", help="print the task folder (for --include_path)")
    pp.set_defaults(func=cmd_path)

    t = lsub.add_parser("tasks", help="print the task names a source can run, comma-separated",
                        description="Task names for the benchmarks present in a source (a local "
                                    "directory may hold fewer than the 11 of the hub), ready for "
                                    "`lm_eval --tasks`.")
    add_source_args(t)
    t.add_argument("--mode", choices=("cot", "adversarial", "mc", "all"), default="all")
    t.add_argument("--subset", choices=("reasoning", "knowledge", "all"), default="all")
    t.set_defaults(func=cmd_tasks)

    s = lsub.add_parser("status", help="show whether lm-eval finds the tasks without a flag")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    r = lsub.add_parser("register", help="write the .pth hook into site-packages")
    r.add_argument("--site-packages", type=Path, default=None,
                   help="target folder (default: this interpreter's purelib)")
    r.set_defaults(func=cmd_register)

    u = lsub.add_parser("unregister", help="remove the .pth hook from site-packages")
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
    print(",".join(names))
    return 0


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
