"""Run one Occlum tool (`occlum build`, `occlum print`, `sgx_sign dump`) so that it stops when Pants dies.

Stdlib only; runs in the sandbox beside sandbox_guard.py (util_rules/bundled_tools.py). The tools are
Occlum's own programs, which do not watch their parent: when a killed Pants leaves them behind, a
`make` of a large image would run on for minutes. This wrapper starts the tool as its child, in the
process group the wrapper leads (Pants starts each step in a session of its own), and the guard
kills that whole group when Pants is gone. Otherwise it is transparent: the tool inherits stdin,
stdout, stderr, cwd and environment, and the wrapper exits with the tool's exit code.

    python guarded_run.py -- <tool> [args...]
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import IO, Optional

if not __package__:  # a script in the sandbox, or imported by one: the guard lies beside it (bundled_tools.py)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import sandbox_guard  # type: ignore[import-not-found,unused-ignore]
else:
    from occlum.toolchain import sandbox_guard


def start(argv: list[str], cwd: Optional[str] = None, stdout: Optional[IO[bytes]] = None) -> subprocess.Popen | int:
    """Start the tool `argv` in `cwd`, killed with this script if Pants dies: its process, or 127
    (with a line on stderr) when it cannot start. `stdout`: a file for its output (default: ours)."""
    sandbox_guard.start()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=stdout)
    except OSError as e:
        sys.stderr.write(f"error: cannot start {argv[0]}: {e.strerror or e}\n")
        return 127
    sandbox_guard.track(proc.pid)
    return proc


def wait(proc: subprocess.Popen | int) -> int:
    """The exit code of what `start` returned."""
    if isinstance(proc, int):
        return proc
    code = proc.wait()
    sandbox_guard.untrack(proc.pid)
    # A tool killed by a signal exits as a shell would report it.
    return code if code >= 0 else 128 - code


def run(argv: list[str], cwd: Optional[str] = None) -> int:
    """Run the tool `argv` in `cwd`, killed with this script if Pants dies; its exit code."""
    return wait(start(argv, cwd))


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "--":
        sys.stderr.write("error: usage: guarded_run.py -- <tool> [args...]\n")
        return 2
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
