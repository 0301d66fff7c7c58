"""How long the judge client takes to give up on an endpoint that is down, on this machine, without a network.

    python scripts/judge_failure_times.py                  # timeout 1 s per attempt, 16 requests
    python scripts/judge_failure_times.py --timeout 2 --requests 64

refused:    a loopback port nobody listens on (connection refused).
black hole: a loopback socket that takes connections and never answers (every attempt runs into the timeout).
Each case is run with 8 workers and with 1, through `ask_many` (what scoring does) and `probe` (what `run` does
before generating). Prints one line per case: seconds until the UserError, and its message.
"""
from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=1.0, help="JudgeSettings.timeout_s (seconds per attempt)")
    parser.add_argument("--requests", type=int, default=16)
    args = parser.parse_args()

    from mqeval.errors import UserError
    from mqeval.scorers.judge import JudgeClient, JudgeRequest, JudgeSettings

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused_port = closed.getsockname()[1]
    closed.close()
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(256)  # the kernel completes the handshakes; nobody ever reads or answers
    endpoints = {"refused": refused_port, "black hole": hole.getsockname()[1]}
    requests = [JudgeRequest(text=f"q{i}", image=b"\x89PNG" + bytes([i % 256])) for i in range(args.requests)]

    with tempfile.TemporaryDirectory() as cache:
        for name, port in endpoints.items():
            for workers, how in ((8, "ask_many"), (1, "ask_many"), (1, "probe")):
                settings = JudgeSettings(base_url=f"http://127.0.0.1:{port}/v1", model="m", cache_dir=Path(cache),
                                         timeout_s=args.timeout, workers=workers)
                start = time.monotonic()
                try:
                    client = JudgeClient(settings)
                    client.probe() if how == "probe" else client.ask_many(requests)
                    outcome = "no error"
                except UserError as exc:
                    outcome = f"Error: {exc}"
                seconds = time.monotonic() - start
                print(f"{name:10s} {how:8s} workers={workers} timeout={args.timeout:g}s: {seconds:7.2f} s  "
                      f"{outcome[:150]}", flush=True)
    hole.close()


if __name__ == "__main__":
    main()
