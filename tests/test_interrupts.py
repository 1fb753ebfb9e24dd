"""Interruptions: SIGINT / SIGTERM stop every worker at once, keep finished chunks, leave no
partial file, exit 130 / 143 with one line saying what finished; a rerun resumes and writes the
same files as an uninterrupted run.

Each test starts the real command in a subprocess (in a temporary directory), waits for
progress on disk (cached chunks) rather than for a fixed time, and signals it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# a tiny study: 2 cells (tanh lr 0.1 and its long run), 6 chunks of one seed each
STUDY = ["study", "question", "--quick", "--activations", "tanh", "--lrs", "0.1", "--seeds", "6",
         "--epochs", "400", "--chunk-seeds", "1", "--workers", "2", "--quiet"]
REPORT = ["report", "--quick", "--activations", "tanh", "--lrs", "0.1", "--seeds", "4",
          "--epochs", "300", "--chunk-seeds", "1", "--workers", "2", "--quiet"]
TIMEOUT = 120  # generous: the machine is shared


def start(cwd: Path, argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "studies.cli", *argv],
                            cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def children(pid: int) -> set[int]:
    """PIDs whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            try:
                cmdline = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if b"resource_tracker" not in cmdline:
                found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cached(cwd: Path) -> int:
    return len(list((cwd / "runs" / "cache").rglob("*.npz")))


def run_until(proc: subprocess.Popen, ready, what: str) -> set[int]:
    """Poll until ``ready()``; return the worker PIDs seen meanwhile."""
    workers: set[int] = set()
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        assert proc.poll() is None, f"finished before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} within {TIMEOUT} s"
        workers |= children(proc.pid)
        time.sleep(0.05)
    return workers | children(proc.pid)


def interrupt(proc: subprocess.Popen, sig: int, workers: set[int]) -> str:
    """Signal, wait; check the exit code, the one line, and that no worker survives."""
    proc.send_signal(sig)
    try:
        _, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler: where it hangs
        _, stderr = proc.communicate(timeout=30)
        raise AssertionError(f"not stopped 30 s after the signal:\n{stderr}") from None
    assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], stderr
    assert stderr.count("\n") == 1 and "interrupted" in stderr and "Traceback" not in stderr, \
        stderr
    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in workers if alive(p)], "worker processes outlived the command"
    return stderr


def no_partial_files(root: Path) -> None:
    leftovers = [p for p in root.rglob("*") if ".partial-" in p.name or p.name.endswith(".tmp")
                 or ".old-" in p.name]
    assert not leftovers, leftovers


def csv_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.csv"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, bytes]:
    """The study's CSV files from an uninterrupted run."""
    cwd = tmp_path_factory.mktemp("reference")
    done = subprocess.run([sys.executable, "-m", "studies.cli", *STUDY, "--out", "out",
                           "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    return csv_files(cwd / "out" / "question")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_study_interrupted_keeps_chunks_and_resumes_identically(sig, reference, tmp_path):
    # an earlier complete run in the same --out: it must stay whole until the new one completes
    old = tmp_path / "out" / "question"
    old.mkdir(parents=True)
    (old / "outcomes.csv").write_text("stale\n")
    proc = start(tmp_path, [*STUDY, "--out", "out"])
    workers = run_until(proc, lambda: cached(tmp_path) >= 2, "two cached chunks")
    assert workers, "no worker process was seen"
    stderr = interrupt(proc, sig, workers)
    finished = cached(tmp_path)
    assert 2 <= finished < 12
    assert f"{finished} of 12 chunks cached" in stderr and "rerun" in stderr, stderr
    assert (old / "outcomes.csv").read_text() == "stale\n"  # not replaced by a partial study
    no_partial_files(tmp_path)

    again = subprocess.run([sys.executable, "-m", "studies.cli", *STUDY, "--out", "out"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    assert again.returncode == 0, again.stderr
    assert csv_files(old) == reference
    no_partial_files(tmp_path)


def test_report_sigterm_stops_workers(tmp_path):
    proc = start(tmp_path, [*REPORT, "--out", "out"])
    workers = run_until(proc, lambda: cached(tmp_path) >= 1, "a cached chunk")
    stderr = interrupt(proc, signal.SIGTERM, workers)
    assert "chunks cached in runs/cache" in stderr
    assert not (tmp_path / "out" / "REPORT.md").exists()
    no_partial_files(tmp_path)


def test_train_sigint_exits_130_and_writes_nothing(tmp_path):
    proc = start(tmp_path, ["train", "--seeds", "50", "--epochs", "10000000", "--out", "run",
                            "--quiet"])
    # train shows no progress on disk: wait until it has computed for a while (past imports)
    run_until(proc, lambda: cpu_seconds(proc.pid) >= 1.5, "1.5 s of computing")
    stderr = interrupt(proc, signal.SIGINT, set())
    assert "nothing written" in stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("out", [["--out", "run"], []])
def test_train_recording_interrupted_removes_the_folders_it_made(tmp_path, out):
    """With --record the run's folder is made before training (the metrics file is written as
    training goes): an interruption removes it again, and the partial file with it."""
    proc = start(tmp_path, ["train", "--seeds", "50", "--epochs", "10000000", *out, "--quiet",
                            "--record", "all", "--record-every", "every:1000"])
    run_until(proc, lambda: cpu_seconds(proc.pid) >= 1.5, "1.5 s of computing")
    stderr = interrupt(proc, signal.SIGINT, set())
    assert "nothing written" in stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_sigterm_handler_is_restored_after_main(capsys, tmp_path):
    from studies.cli import main

    before = signal.getsignal(signal.SIGTERM)
    assert main(["train", "--seeds", "2", "--epochs", "3", "--quiet",
                 "--out", str(tmp_path / "r")]) == 0
    assert signal.getsignal(signal.SIGTERM) is before


def test_workers_ignore_sigint_and_die_with_the_parent(tmp_path):
    """A worker does not react to SIGINT; killing its parent outright takes the workers too."""
    proc = start(tmp_path, [*STUDY, "--out", "out"])
    workers = run_until(proc, lambda: len(children(proc.pid)) >= 2, "two workers")
    workers = {w for w in workers if alive(w)}
    for w in workers:
        os.kill(w, signal.SIGINT)
    time.sleep(0.3)
    assert all(alive(w) for w in workers)
    proc.kill()  # SIGKILL: no clean-up in the parent at all
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if alive(w)], "orphaned workers kept running"
