"""sandbox_guard: a sandbox script stops within seconds when the process that started it is killed.

`start_under_parent` / `assert_stops_with_parent` are also used by the jdk/ and toolchain/ script
tests: they run a script the way Pants does (its own session, under a parent process), SIGKILL
the parent, and check that the script (and what it started) is gone soon after.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable, Optional

import pytest

from occlum.toolchain import sandbox_guard

GUARD = Path(sandbox_guard.__file__)
# The guard polls every POLL_SECONDS; this leaves room for a loaded CI machine.
STOP_WITHIN_SECONDS = 5.0

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

# The stand-in for Pants: starts the script in a session of its own (as Pants' setsid does),
# prints its pid, waits. The test SIGKILLs it, like `kill -KILL` of `pants --no-pantsd`.
_PARENT = r"""
import subprocess, sys
err = open(sys.argv[1], "wb")
child = subprocess.Popen(sys.argv[3:], stdout=err, stderr=err, start_new_session=sys.argv[2] == "session")
print(child.pid, flush=True)
child.wait()
"""


def alive(pid: int) -> bool:
    """Running (a zombie that init has not reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def start_under_parent(
    argv: Sequence[str], cwd: Path, log: Path, *, env: Optional[dict] = None, session: bool = True
) -> tuple[subprocess.Popen, int]:
    """Start argv under a parent process; return (parent, the script's pid) once its guard runs."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(log), "session" if session else "-", *argv],
        cwd=str(cwd),
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    # The watcher thread exists once sandbox_guard.start() ran.
    assert wait_for(lambda: threads(pid) >= 2 or not alive(pid), 10), "the script never started its guard"
    assert alive(pid), log.read_text(errors="replace")
    return parent, pid


def assert_stops_with_parent(parent: subprocess.Popen, pid: int, log: Path, *others: int) -> float:
    """SIGKILL the parent; the script (and `others`, e.g. its children) must be gone soon after."""
    assert parent.poll() is None, "the parent ended before it was killed"
    try:
        t = time.monotonic()
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        gone = wait_for(lambda: not alive(pid) and not any(alive(o) for o in others), STOP_WITHIN_SECONDS)
        took = time.monotonic() - t
        assert gone, (
            f"still running {STOP_WITHIN_SECONDS} s after its parent died: {[p for p in (pid, *others) if alive(p)]}"
        )
    finally:
        for p in (pid, *others):  # never leave a process of this test behind
            if alive(p):
                os.kill(p, signal.SIGKILL)
    assert "the process that started this step (Pants) is gone" in log.read_text(errors="replace")
    return took


def _script(tmp_path: Path, body: str) -> Path:
    """A sandbox-like folder: the guard beside a script that imports it as the real scripts do."""
    (tmp_path / "sandbox_guard.py").write_bytes(GUARD.read_bytes())
    script = tmp_path / "tool.py"
    script.write_text("import sys, time, subprocess\nimport sandbox_guard\nsandbox_guard.start()\n" + body)
    return script


def test_a_script_blocked_in_one_call_stops_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = _script(tmp_path, "time.sleep(120)\n")
    parent, pid = start_under_parent([sys.executable, str(script)], tmp_path, tmp_path / "log")
    assert assert_stops_with_parent(parent, pid, tmp_path / "log") < STOP_WITHIN_SECONDS


def test_a_looping_script_stops_at_its_next_check(tmp_path: Path) -> None:
    script = _script(tmp_path, "while True:\n    sandbox_guard.check()\n    sum(range(1000))\n")
    parent, pid = start_under_parent([sys.executable, str(script)], tmp_path, tmp_path / "log")
    assert_stops_with_parent(parent, pid, tmp_path / "log")


def test_the_step_group_goes_with_it(tmp_path: Path) -> None:
    # As under Pants, the script leads its own process group: what it started (and what that
    # started) is killed with it, though it was never tracked.
    script = _script(
        tmp_path,
        "p = subprocess.Popen(['sh', '-c', 'sleep 120 & echo $! > grandchild.pid; wait'])\n"
        "open('child.pid', 'w').write(str(p.pid))\np.wait()\n",
    )
    parent, pid = start_under_parent([sys.executable, str(script)], tmp_path, tmp_path / "log")
    assert wait_for(lambda: (tmp_path / "grandchild.pid").exists() and (tmp_path / "child.pid").exists(), 10)
    time.sleep(0.1)
    child, grandchild = (int((tmp_path / n).read_text()) for n in ("child.pid", "grandchild.pid"))
    assert alive(child) and alive(grandchild)
    assert_stops_with_parent(parent, pid, tmp_path / "log", child, grandchild)


def test_outside_a_session_only_tracked_children_are_killed(tmp_path: Path) -> None:
    # Not a group leader (started without setsid): the guard must not kill the group, which here
    # is the test runner's own; it kills the children it was told about.
    script = _script(
        tmp_path,
        "p = subprocess.Popen(['sleep', '120'])\nsandbox_guard.track(p.pid)\n"
        "open('child.pid', 'w').write(str(p.pid))\np.wait()\n",
    )
    parent, pid = start_under_parent([sys.executable, str(script)], tmp_path, tmp_path / "log", session=False)
    assert wait_for(lambda: (tmp_path / "child.pid").exists(), 10)
    time.sleep(0.1)
    child = int((tmp_path / "child.pid").read_text())
    assert_stops_with_parent(parent, pid, tmp_path / "log", child)
    assert alive(os.getpid())


def test_a_script_whose_parent_lives_runs_to_the_end(tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        "for _ in range(8):\n    sandbox_guard.check()\n"
        "    time.sleep(sandbox_guard.POLL_SECONDS / 2)\nprint('done')\n",
    )
    done = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, "done\n"), done.stderr


def test_orphaned_compares_with_the_parent_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_guard, "_parent", None)
    assert not sandbox_guard.orphaned()  # never started: nothing to lose
    monkeypatch.setattr(sandbox_guard, "_parent", os.getppid())
    assert not sandbox_guard.orphaned()
    sandbox_guard.check()  # returns: the parent is the same
    monkeypatch.setattr(sandbox_guard, "_parent", os.getppid() + 1)
    assert sandbox_guard.orphaned()


def test_a_script_whose_pants_died_before_it_started_stops_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pants killed between spawning the step and its start(): the step's parent is already init.
    stopped = []
    monkeypatch.setattr(sandbox_guard, "_parent", None)
    monkeypatch.setattr(sandbox_guard.os, "getppid", lambda: 1)
    monkeypatch.setattr(sandbox_guard, "_init_is_pants", lambda: False)
    monkeypatch.setattr(sandbox_guard, "stop", lambda: stopped.append(True))
    monkeypatch.setattr(sandbox_guard.threading, "Thread", lambda **kw: type("T", (), {"start": lambda self: None})())
    sandbox_guard.start()
    assert stopped == [True]


@pytest.mark.parametrize("ppid, init_is_pants", [(1, True), (0, False)])
def test_pants_as_pid_1_or_a_parent_outside_the_namespace_is_not_an_orphan(
    monkeypatch: pytest.MonkeyPatch, ppid: int, init_is_pants: bool
) -> None:
    stopped = []
    monkeypatch.setattr(sandbox_guard, "_parent", None)
    monkeypatch.setattr(sandbox_guard.os, "getppid", lambda: ppid)
    monkeypatch.setattr(sandbox_guard, "_init_is_pants", lambda: init_is_pants)
    monkeypatch.setattr(sandbox_guard, "stop", lambda: stopped.append(True))
    monkeypatch.setattr(sandbox_guard.threading, "Thread", lambda **kw: type("T", (), {"start": lambda self: None})())
    sandbox_guard.start()
    assert stopped == []
