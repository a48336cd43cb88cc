"""The one input/output layer every ``medsplit`` command uses.

Accepts: any path a user typed. Guarantees:

- reading: a text file is UTF-8 (a UTF-8 BOM is allowed); anything else (UTF-16, Latin-1
  bytes, a lone surrogate) is one :class:`InputFileError` naming file, line and column.
  JSON problems (syntax, integers over Python's digit limit, nesting too deep, lone
  surrogate escapes) are likewise one error naming ``file:line:column``; unreadable or
  missing files and directories given as files say so in one line.
- writing: an output path is checked before any long work (:func:`check_output_file`,
  :func:`check_output_dir`: not a directory / not a file, no file as a parent, writable);
  every file is written to a temporary sibling and replaces the target only when complete
  (:func:`atomic_path`), under an exclusive lock (:func:`locked`), so a kill never leaves
  half a file and two runs never write the same target; temporary files a killed run left
  beside the target are removed by the next run that writes it.
- a whole directory is built in a staging sibling and swapped in at the end
  (:func:`swap_dir`), atomically where the OS can (Linux ``renameat2``).
- :func:`check_npz_sizes` reads a ``.npz``'s declared array sizes before anything is
  decompressed.

Every error here is an :class:`InputFileError` (a :class:`~lm_eval_medsplit.errors.CLIError`
and a ``ValueError``): ``medsplit`` prints it as one line and exits 2.
"""

from __future__ import annotations

import codecs
import errno
import json
import math
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lm_eval_medsplit.errors import CLIError

#: Where a too-deep JSON text is reported: Python's parser stops with RecursionError
#: somewhere near 1,000 levels, and the error names the offset where nesting passed this
#: depth (no benchmark row nests past 10).
MAX_JSON_DEPTH = 200


class InputFileError(CLIError, ValueError):
    """A file that cannot be read or written as asked; the message is one line naming it."""


# --------------------------------------------------------------------------- reading


def _os_error(path, e: OSError, what: str = "cannot read") -> InputFileError:
    reason = e.strerror or type(e).__name__
    if isinstance(e, IsADirectoryError):
        reason = "is a directory, expected a file"
    return InputFileError(f"{path}: {what}: {reason}")


def _encoding_error(path, data: bytes, start: int, line_no: int | None = None) -> InputFileError:
    line = line_no if line_no is not None else data.count(b"\n", 0, start) + 1
    col = start - (data.rfind(b"\n", 0, start) + 1) + 1
    bad = data[start:start + 1]
    return InputFileError(f"{path}:{line}:{col}: not valid UTF-8 (byte 0x{bad.hex()}); "
                          f"save the file as UTF-8")


def _check_bom(path, head: bytes) -> None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or \
            head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise InputFileError(f"{path}:1:1: the file is UTF-16/UTF-32 (byte order mark); "
                             f"save it as UTF-8")
    if len(head) >= 4 and (head[1:4:2] == b"\x00\x00" or head[0:4:2] == b"\x00\x00"):
        raise InputFileError(f"{path}:1:1: the file looks like UTF-16 (NUL bytes); save it as UTF-8")


def read_bytes(path: str | os.PathLike) -> bytes:
    """A file's bytes; a missing, unreadable or directory path is one :class:`InputFileError`."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise _os_error(path, e) from None


def read_text(path: str | os.PathLike) -> str:
    """A whole UTF-8 text file (BOM allowed); any other encoding is one error naming
    file, line and column of the first bad byte."""
    data = read_bytes(path)
    _check_bom(path, data[:4])
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _encoding_error(path, data, e.start) from None


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` for every line of a UTF-8 text file (newline kept), read
    one line at a time; an encoding problem is one error naming its line and column."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise _os_error(path, e) from None
    with f:
        for i, raw in enumerate(f, 1):
            if i == 1:
                _check_bom(path, raw[:4])
                if raw.startswith(codecs.BOM_UTF8):
                    raw = raw[3:]
            try:
                yield i, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise _encoding_error(path, raw, e.start, line_no=i) from None


_DEPTH_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[{]|[\]}]')


def _too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> int | None:
    """The offset where nesting passes ``limit`` (brackets inside strings skipped), or
    ``None``. Only called when the text holds more than ``limit`` brackets."""
    depth = 0
    for m in _DEPTH_TOKENS.finditer(text):
        c = m.group()[0]
        if c in "[{":
            depth += 1
            if depth > limit:
                return m.start()
        elif c in "]}":
            depth -= 1
    return None


class JSONProblem(ValueError):
    """Why a JSON text did not parse: ``line``, ``column`` (1-based) and ``msg``."""

    def __init__(self, msg: str, line: int = 1, column: int = 1):
        self.msg, self.line, self.column = msg, line, column
        super().__init__(f"line {line}, column {column}: {msg}")


def _pos(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def parse_json(text: str) -> Any:
    """``json.loads`` whose every failure is a :class:`JSONProblem` with line and column:
    syntax errors, integers longer than Python allows, nesting deeper than
    :data:`MAX_JSON_DEPTH`, and ``\\ud800``-style escapes that make a lone surrogate
    (not Unicode; no file could hold it)."""
    try:
        obj = _DECODER.decode(text)
    except RecursionError:  # only then find where (the scan costs a pass over the text)
        at = _too_deep(text)
        raise JSONProblem(f"nested deeper than {MAX_JSON_DEPTH} levels",
                          *(_pos(text, at) if at is not None else (1, 1))) from None
    except _Constant as e:
        raise JSONProblem(f"{e.args[0]} is not JSON (write null or a number)",
                          *_pos(text, max(0, text.find(e.args[0])))) from None
    except json.JSONDecodeError as e:  # "Unterminated string starting at": the position follows
        raise JSONProblem(re.sub(r"\s+at$", "", e.msg), e.lineno, e.colno) from None
    except ValueError as e:  # int over sys.get_int_max_str_digits()
        m = re.search(r"\d{100,}", text)
        raise JSONProblem(f"a number is too long ({str(e).split(';')[0]})",
                          *(_pos(text, m.start()) if m else (1, 1))) from None
    if ("\\ud" in text or "\\uD" in text) and _has_lone_surrogate(obj):
        m = re.search(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}", text)
        raise JSONProblem("a \\uXXXX escape makes a lone surrogate (not valid Unicode)",
                          *(_pos(text, m.start()) if m else (1, 1)))
    return obj


class _Constant(Exception):
    pass


def _no_constant(name: str):
    raise _Constant(name)


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def _has_lone_surrogate(obj: Any) -> bool:
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def json_error_text(e: JSONProblem, line_offset: int = 0) -> str:
    """``not valid JSON at line L, column C: msg`` (``line_offset`` added to the line)."""
    return f"not valid JSON at line {e.line + line_offset}, column {e.column}: {e.msg}"


def read_json(path: str | os.PathLike) -> Any:
    """A whole JSON file; any problem is one :class:`InputFileError` ``file:line:column: ...``."""
    text = read_text(path)
    try:
        return parse_json(text)
    except JSONProblem as e:
        raise InputFileError(f"{path}:{e.line}:{e.column}: not valid JSON: {e.msg}") from None


# --------------------------------------------------------------------------- output paths


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_parent(path: Path, flag: str) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputFileError(f"{flag} {path}: {parent} is a file, not a directory")
            break
    anchor = _nearest_existing(path.parent if not path.exists() else path)
    if anchor.is_dir() and not os.access(anchor, os.W_OK | os.X_OK):
        raise InputFileError(f"{flag} {path}: cannot write in {anchor}: permission denied")


def check_output_file(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Refuse an output file path that cannot be written (a directory, a file as parent,
    no write permission) before any work is done; returns it as a ``Path``."""
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{flag} {path}: is a directory; give a file name")
    if path.exists() and not os.access(path, os.W_OK) and not os.access(path.parent, os.W_OK):
        raise InputFileError(f"{flag} {path}: cannot write: permission denied")
    _check_parent(path, flag)
    return path


def check_output_dir(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Refuse an output directory path that is a file, has a file as parent, or cannot
    be written, before any work is done; returns it as a ``Path``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputFileError(f"{flag} {path}: exists and is not a directory")
    _check_parent(path, flag)
    return path


def same_or_nested(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths are the same, or one lies inside the other (symlinks resolved)."""
    ra, rb = Path(a).resolve(), Path(b).resolve()
    return ra == rb or ra.is_relative_to(rb) or rb.is_relative_to(ra)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (hard links and symlinks included; resolved paths
    compared where either cannot be stat'ed)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


# --------------------------------------------------------------------------- locks and atomic writes


def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


@contextmanager
def locked(path: str | os.PathLike, flag: str = "--out") -> Iterator[Path]:
    """Hold an exclusive lock for writing ``path`` (a hidden sibling lock file, removed
    on release). A second run asking for the same lock fails at once with one line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock_path(path)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise _os_error(lock, e, "cannot create the lock file") from None
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory lock
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise InputFileError(f"{flag} {path}: another medsplit run is writing it "
                                         f"(lock {lock}); wait for it or stop it") from None
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except OSError:
                same = False
            if not same:  # another run released and removed it while we waited
                raise InputFileError(f"{flag} {path}: another medsplit run is writing it "
                                     f"(lock {lock}); wait for it or stop it")
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        recover_dir(path)
        clean_stale(path)
        yield path
    finally:
        try:
            lock.unlink(missing_ok=True)
        finally:
            os.close(fd)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def clean_stale(path: str | os.PathLike) -> list[Path]:
    """Remove temporary siblings of ``path`` (files or staging folders) that a killed
    run left; call only while holding :func:`locked` for ``path`` (then none is live).
    Returns what was removed."""
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    pat = re.compile(rf"^\.?{re.escape(path.name)}\.(?:tmp|staging-|old-)(\d+)$")
    for p in path.parent.iterdir():
        m = pat.match(p.name)
        if m and m.group(1) != str(os.getpid()):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike, *, lock: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; it replaces ``path`` when the block
    ends normally and is removed when it raises (the old ``path``, if any, is kept).
    With ``lock`` (default) the write holds :func:`locked` for ``path``."""
    path = Path(path)
    if path.is_dir():
        raise InputFileError(f"{path}: is a directory; cannot write a file there")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _os_error(path.parent, e, "cannot create the folder") from None
    ctx = locked(path) if lock else _nolock(path)
    with ctx:
        tmp = _tmp_name(path)
        try:
            yield tmp
            os.replace(tmp, path)
        except OSError as e:
            if getattr(e, "filename", None) in (str(tmp), str(path)) or isinstance(e, PermissionError):
                raise _os_error(path, e, "cannot write") from None
            raise
        finally:
            tmp.unlink(missing_ok=True)


@contextmanager
def _nolock(path: Path) -> Iterator[Path]:
    yield path


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a UTF-8 text file atomically (under the lock)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a binary file atomically (under the lock)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def dumps_row(row: dict[str, Any]) -> str:
    """One JSON line: UTF-8 text kept, NaN/Infinity refused (they are not JSON)."""
    try:
        return json.dumps(row, ensure_ascii=False, allow_nan=False)
    except ValueError:
        bad = [k for k, v in row.items() if isinstance(v, float) and not math.isfinite(v)]
        raise InputFileError(f"field {bad[0] if bad else '?'!r} is NaN or infinite; JSON cannot hold "
                             f"it (row id {row.get('id')!r})") from None


def write_jsonl_rows(path: str | os.PathLike, rows: Iterable[dict[str, Any]], *,
                     lock: bool = True) -> int:
    """Write one JSON object per line (UTF-8, non-ASCII kept) atomically; return the count.
    ``lock=False`` for a shared cache that parallel processes may fill at once (each
    writes its own temporary file; the last complete one wins)."""
    n = 0
    with atomic_path(path, lock=lock) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(dumps_row(row) + "\n")
            n += 1
    return n


# --------------------------------------------------------------------------- directories


def staging_dir(out: Path) -> Path:
    """A fresh staging sibling of ``out`` for this process (removed if it exists)."""
    stage = out.with_name(f".{out.name}.staging-{os.getpid()}")
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    return stage


def _renameat2_exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where
    the OS or file system cannot."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    rc = fn(AT_FDCWD, os.fsencode(str(a)), AT_FDCWD, os.fsencode(str(b)), RENAME_EXCHANGE)
    return rc == 0


def swap_dir(stage: Path, out: Path) -> None:
    """Put the complete ``stage`` folder in place of ``out`` and delete the old one.
    Atomic on Linux (exchange); elsewhere ``out`` is missing for the instant between two
    renames, and the next run's :func:`recover_dir` puts the old one back."""
    if out.is_dir() and not out.is_symlink():
        if _renameat2_exchange(stage, out):
            shutil.rmtree(stage)  # now holds the old output
            return
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(stage, out)
        shutil.rmtree(old)
    else:
        os.replace(stage, out)


def recover_dir(out: Path) -> None:
    """After a kill between the two renames of :func:`swap_dir` (no ``out``, an
    ``.old-PID`` sibling): put the old output back. Call while holding the lock."""
    if out.exists() or not out.parent.is_dir():
        return
    olds = sorted(p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.old-"))
    if olds:
        os.replace(olds[-1], out)


# --------------------------------------------------------------------------- npz


def check_npz_sizes(path: str | os.PathLike, max_bytes: int = 64 << 20,
                    max_ratio: float = 200.0) -> dict[str, int]:
    """Read a ``.npz``'s zip directory and refuse it before anything is decompressed when
    its members declare more than ``max_bytes`` in total, or expand more than
    ``max_ratio`` times their compressed size (a zip bomb). Returns member -> declared
    bytes. A file that is not a zip is one :class:`InputFileError`."""
    import zipfile

    path = Path(path)
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except zipfile.BadZipFile as e:
        raise InputFileError(f"{path}: not a valid .npz (zip) file: {e}") from None
    except OSError as e:
        raise _os_error(path, e) from None
    sizes = {i.filename: i.file_size for i in infos}
    total = sum(sizes.values())
    packed = sum(i.compress_size for i in infos) or 1
    if total > max_bytes:
        raise InputFileError(f"{path}: its arrays declare {total:,} bytes uncompressed, over the "
                             f"{max_bytes:,}-byte limit; refusing to load it")
    if total > 1 << 20 and total / packed > max_ratio:
        raise InputFileError(f"{path}: its arrays expand {total / packed:,.0f}x ({packed:,} -> "
                             f"{total:,} bytes); refusing to load a likely zip bomb")
    return sizes


__all__ = [
    "InputFileError", "JSONProblem", "read_bytes", "read_text", "iter_lines", "parse_json",
    "read_json", "json_error_text", "check_output_file", "check_output_dir", "same_or_nested",
    "same_file", "locked", "atomic_path", "clean_stale", "write_text", "write_bytes", "write_jsonl_rows",
    "dumps_row", "staging_dir", "swap_dir", "recover_dir", "check_npz_sizes", "MAX_JSON_DEPTH",
]
