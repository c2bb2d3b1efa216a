"""The Python that runs the backend's own stdlib tools (download, extraction, toolchain steps).

A process's argv is its cache key. Pants' own `PythonBuildStandaloneBinary` is, for a local
environment, the interpreter Pants runs in: a path inside each Pants install's venv. Keyed on it,
the JDK would be downloaded and extracted again for every Pants install on a machine, and no two
machines would share a cache entry. So the tools run on the machine's `python3` from a fixed search
path when it is CPython 3.9+, and the step is keyed on that path and the interpreter's version
string, not on the Pants install. Without one, Pants' own interpreter is used (in a remote or
Docker environment, the standalone Python Pants downloads for it; only then is it asked for).
"""

from __future__ import annotations

from dataclasses import dataclass

from pants.core.util_rules.system_binaries import BinaryPathRequest, BinaryPathTest
from pants.engine.rules import collect_rules, rule
from pants.util.logging import LogLevel

from occlum.pants_compat import find_binary, get_python_for_scripts

# Fixed, not $PATH: PATH differs between users and CI jobs, and would split the cache.
SEARCH_PATH = ("/usr/bin", "/bin", "/usr/local/bin")
_VERSION_TEST = BinaryPathTest(
    args=[
        "-c",
        "import sys; sys.exit(sys.version_info < (3, 9) or sys.implementation.name != 'cpython') or print(sys.version)",
    ]
)


@dataclass(frozen=True)
class ToolPython:
    path: str
    # What the steps are keyed on besides the path: the interpreter's version string.
    version_key: str

    @property
    def env(self) -> dict[str, str]:
        return {"OCCLUM_TOOL_PYTHON": self.version_key} if self.version_key else {}


@rule(desc="Finding a Python for the backend's tools", level=LogLevel.DEBUG)
async def tool_python() -> ToolPython:
    found = await find_binary(BinaryPathRequest(binary_name="python3", search_path=SEARCH_PATH, test=_VERSION_TEST))
    first = found.first_path
    if first is not None:
        return ToolPython(first.path, first.fingerprint)
    # Asked for only now: in a remote or Docker environment Pants downloads it (from GitHub).
    fallback = await get_python_for_scripts()
    return ToolPython(fallback.path, "")


def rules():
    return collect_rules()
