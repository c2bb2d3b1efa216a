"""The plugin's own stdlib scripts (jdk/, toolchain/), run as Processes in a sandbox.

Each script's bytes are part of its step's input digest, so editing one re-runs only its step.
Scripts report a refusal as one `error: <message>` line on stderr and exit non-zero.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from pants.engine.fs import FileContent
from pants.engine.process import FallibleProcessResult

_PACKAGE = Path(__file__).resolve().parent.parent
_SANDBOX_DIR = "__occlum_tools"


def tool_path(script: str) -> str:
    """Where `script` (e.g. "jdk/fetch_tool.py") lies in the sandbox."""
    return f"{_SANDBOX_DIR}/{posixpath.basename(script)}"


def tool_file(script: str) -> FileContent:
    return FileContent(tool_path(script), (_PACKAGE / script).read_bytes())


def tool_error(result: FallibleProcessResult) -> str:
    """The script's message, without its `error: ` prefix."""
    return result.stderr.decode("utf-8", "replace").strip().removeprefix("error: ")
