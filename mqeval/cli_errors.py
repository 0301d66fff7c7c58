"""How the command line ends: every failure becomes one `Error: ...` line on stderr and a non-zero exit code.

- UserError (and click's usage errors: bad option values, unknown options): exit 2;
- an operating-system error (permission denied, no space left, not a directory, ...): exit 2, naming the file;
- Ctrl-C: exit 130;
- anything else is a bug in mqeval: exit 1, with the traceback saved to `<mqeval cache>/last-error.txt` (not
  printed, so a log still ends in one readable line).
"""
from __future__ import annotations

import errno
import sys
import traceback
from typing import Any, Callable, NoReturn


def _fail(message: str, code: int) -> NoReturn:
    print(f"Error: {' '.join(str(message).split())}", file=sys.stderr)
    raise SystemExit(code)


def describe_os_error(exc: OSError) -> str:
    what = exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc)
    where = f": {exc.filename}" if exc.filename else ""
    hint = ""
    if exc.errno == errno.ENOSPC:
        hint = " (free some space or pass another --out)"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = " (choose a folder you can write, e.g. with --out)"
    return f"{what}{where}{hint}"


def _save_traceback() -> str:
    from mqeval.generation.lock import command_line
    from mqeval.paths import cache_dir

    try:
        path = cache_dir() / "last-error.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{command_line()}\n\n{traceback.format_exc()}", encoding="utf-8")
        return f"; the traceback is in {path}"
    except OSError:
        return ""


def _is(exc: BaseException, name: str) -> bool:
    """Click's exception classes by name: typer ships its own copy of click (typer._click) besides click."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def call_cli(call: Callable[..., Any], *args: Any, **kwargs: Any) -> NoReturn:
    """Run a click/typer entry point in non-standalone mode and end the process as described above."""
    from mqeval.errors import UserError

    try:
        code = call(*args, standalone_mode=False, **kwargs)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except UserError as exc:
        _fail(str(exc), 2)
    except OSError as exc:
        _fail(describe_os_error(exc), 2)
    except Exception as exc:
        if _is(exc, "NoArgsIsHelpError"):  # the help is printed already (or is the message)
            if exc.format_message().strip():
                print(exc.format_message(), file=sys.stderr)
            raise SystemExit(2) from None
        if _is(exc, "UsageError"):
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            _fail(exc.format_message() + hint, 2)
        if _is(exc, "Abort"):
            _fail("interrupted", 130)
        _fail(f"unexpected {type(exc).__name__}: {exc} (a bug in mqeval{_save_traceback()})", 1)
    raise SystemExit(code if isinstance(code, int) else 0)

