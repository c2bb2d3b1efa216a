"""guarded_run.py: transparent for a tool that runs to the end; stops the tool when its parent dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TOOLCHAIN = Path(__file__).resolve().parent


def _sandbox(tmp: Path) -> Path:
    tools = tmp / "__occlum_tools"
    tools.mkdir()
    for name in ("guarded_run.py", "sandbox_guard.py"):
        (tools / name).write_bytes((TOOLCHAIN / name).read_bytes())
    return tools / "guarded_run.py"


def test_output_and_exit_code_are_the_tools(tmp_path: Path) -> None:
    script = _sandbox(tmp_path)
    tool = [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"]
    r = subprocess.run([sys.executable, str(script), "--", *tool], capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")


def test_a_missing_tool_and_bad_usage_are_one_line_errors(tmp_path: Path) -> None:
    script = _sandbox(tmp_path)
    r = subprocess.run([sys.executable, str(script), "--", str(tmp_path / "nope")], capture_output=True, text=True)
    assert r.returncode == 127 and r.stderr.startswith("error: cannot start ") and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, str(script), "occlum"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr == "error: usage: guarded_run.py -- <tool> [args...]\n"


def test_the_tool_and_its_children_stop_when_the_parent_dies(tmp_path: Path) -> None:
    # A parent (standing in for Pants) starts the wrapper in a session of its own, as Pants does, around
    # a tool that starts a grandchild; both sleep far longer than the test waits. Then the parent dies.
    script = _sandbox(tmp_path)
    pids = tmp_path / "pids"
    tool = (
        "import os, subprocess, time; c = subprocess.Popen(['sleep', '60']); "
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{c.pid}}'); time.sleep(60)"
    )
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; subprocess.Popen(sys.argv[1:], start_new_session=True); time.sleep(60)",
            sys.executable,
            str(script),
            "--",
            sys.executable,
            "-c",
            tool,
        ]
    )
    deadline = time.monotonic() + 20
    while not (pids.exists() and pids.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    tool_pid, grandchild = map(int, pids.read_text().split())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    t = time.monotonic()
    while time.monotonic() - t < 5 and any(_alive(p) for p in (tool_pid, grandchild)):
        time.sleep(0.05)
    assert not _alive(tool_pid) and not _alive(grandchild)
    assert time.monotonic() - t < 1.5  # the guard polls every 0.25 s


def _alive(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:"))
    except (OSError, StopIteration):
        return False
    return "zombie" not in state
