"""Run the `mqeval` command line inside the test process (as `python -m mqeval` would, through the same error
handling), capturing exit code, stdout and stderr: fast enough for tables of many bad inputs."""
from __future__ import annotations

import contextlib
import io
import socket
from dataclasses import dataclass


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""


def run_cli(*args) -> CliResult:
    from mqeval.cli import app

    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            app(args=[str(a) for a in args], prog_name="mqeval")
        except SystemExit as exc:
            code = exc.code
    return CliResult(code if isinstance(code, int) else (0 if code is None else 1), out.getvalue(), err.getvalue())


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
