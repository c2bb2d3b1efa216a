"""The plugin's own stdlib scripts (jdk/, toolchain/), run as Processes in a sandbox.

Each script runs with toolchain/sandbox_guard.py beside it (it stops the script when the Pants
process that started it dies). The script's bytes and the guard's are its step's input digest, so
editing a script re-runs only its step; editing the guard re-runs them all.
Scripts report a refusal as one `error: <message>` line on stderr and exit non-zero.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from pants.engine.fs import FileContent
from pants.engine.process import FallibleProcessResult

_PACKAGE = Path(__file__).resolve().parent.parent
# How long the backend's steps wait for a remote cache's answer before they run anyway
# (`Process.remote_cache_speculation_delay_millis`). Pants' default, 0, starts a step at once beside
# the lookup; with remote execution that sends the step to a worker even when the cache then has
# its result (seen with Buildbarn), and a JDK download or an `occlum build` is not worth racing a
# lookup that takes milliseconds. A miss answers at once, so nothing waits on one.
CACHE_FIRST_MILLIS = 2000
_SANDBOX_DIR = "__occlum_tools"
SANDBOX_GUARD = "toolchain/sandbox_guard.py"


def tool_path(script: str) -> str:
    """Where `script` (e.g. "jdk/fetch_tool.py") lies in the sandbox."""
    return f"{_SANDBOX_DIR}/{posixpath.basename(script)}"


def tool_files(script: str) -> tuple[FileContent, ...]:
    """The script and the guard module it imports, side by side in the sandbox: `CreateDigest(tool_files(...))`."""
    return tuple(FileContent(tool_path(path), (_PACKAGE / path).read_bytes()) for path in (script, SANDBOX_GUARD))


def tool_error(result: FallibleProcessResult) -> str:
    """The script's message, without its `error: ` prefix."""
    return result.stderr.decode("utf-8", "replace").strip().removeprefix("error: ")
