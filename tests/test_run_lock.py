"""One writer per run folder: a second concurrent run is refused, a dead holder's lock is taken over, and the
temporary files of killed writers are removed by the next one."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers_cli import REPO
from helpers_cli_inprocess import run_cli
from mqeval.run_folder import LOCK_NAME
from mqeval.generation.lock import RunLockedError, lock_holder, run_lock


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _wait_for_holder(folder, pid, process, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock_holder(folder).get("pid") == pid:
            return
        if process.poll() is not None:
            pytest.fail(f"the first writer ended before it was seen holding the lock: {process.communicate()}")
        time.sleep(0.05)
    pytest.fail("the first writer never took the lock")


def test_two_concurrent_runs_one_is_refused(tmp_path):
    out = tmp_path / "run"
    argv = ["run", "shapes", "--model", "metaquery-tiny", "--limit", "4", "--out", str(out), "--no-progress"]
    first = subprocess.Popen([sys.executable, "-m", "mqeval.cli", *argv], cwd=REPO, env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_holder(out, first.pid, first)
        second = run_cli(*argv, "--overwrite")  # the case: --overwrite while another run writes
        assert second.code == 2 and "Traceback" not in second.stderr
        assert second.last_line.startswith(f"Error: {out} is being written by process {first.pid} on ")
        stdout, stderr = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stderr
    results = json.loads((out / "results.json").read_text())
    manifest = json.loads((out / "generation.json").read_text())
    assert results["generation"]["seed"] == manifest["settings"]["seed"] and results["benchmark"]["num_samples"] == 4
    assert not (out / LOCK_NAME).exists()  # released


def test_the_lock_of_a_dead_process_is_taken_over(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom mqeval.generation.lock import run_lock\n"
         f"with run_lock({str(tmp_path)!r}):\n    print('locked', flush=True)\n    time.sleep(600)\n"],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"process {holder.pid} on "):
            with run_lock(tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)  # dies without releasing anything
        holder.wait()
    assert lock_holder(tmp_path)["pid"] == holder.pid  # its record is still there ...
    with run_lock(tmp_path) as token:  # ... but the lock died with it
        holder = lock_holder(tmp_path)
        assert holder["pid"] == os.getpid() and holder["token"] == token
    assert not (tmp_path / LOCK_NAME).exists()


def test_temporaries_of_killed_writers_are_removed_by_the_next_one(tmp_path):
    leftovers = [tmp_path / ".generation.json.4242.0123456789ab.tmp.json",
                 tmp_path / ".results.json.77.abcdefabcdef.tmp.json",
                 tmp_path / "images" / "00000" / "samples" / ".0001.png.9.00000000ffff.tmp.png"]
    kept = [tmp_path / ".notes.tmp", tmp_path / "images" / "00000" / "samples" / "0001.png"]
    for path in leftovers + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    with run_lock(tmp_path):
        pass
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in kept)


def test_a_rank_other_than_0_writes_under_rank_0s_lock(tmp_path):
    with run_lock(tmp_path) as token:
        assert token
        with run_lock(tmp_path, enabled=False) as other:  # no second lock, no refusal
            assert other is None
        with pytest.raises(RunLockedError):
            with run_lock(tmp_path):
                pass


def test_the_holder_record_names_the_command_without_credentials(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["mqeval", "run", "wise", "--judge-base-url", "http://me:s3cret@10.0.0.2/v1"])
    with run_lock(tmp_path):
        holder = lock_holder(tmp_path)
    assert holder["command"] == "mqeval run wise --judge-base-url http://10.0.0.2/v1"
