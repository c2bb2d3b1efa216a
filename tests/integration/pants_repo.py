"""Run the real Pants on a throwaway copy of this repo, with its own caches (shared by integration tests)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from pants.version import VERSION

import fake_jdk

REPO = Path(__file__).resolve().parents[2]
# The Pants the suite runs on: the interpreter's own (the pinned venv's, or the one made by
# build-support/pants-under-test/overlay.py for OCCLUM_TEST_PANTS_PYTHON), run as a module, so a
# Pants run from its sources (no `pants` console script) works the same.
PANTS = [sys.executable, "-m", "pants"]
PANTS_VERSION = str(VERSION)


def pex_cli_args() -> list[str]:
    """On a Pants given by OCCLUM_TEST_PANTS_PYTHON: Pants 2.19.1+ resolve the backend's
    requirements.txt with the `pex` CLI, which they fetch from GitHub; overlay.py built the same pex
    release from PyPI, and these options point Pants at it. Empty on the pinned 2.17.1."""
    record = Path(sys.prefix) / "pex-cli.json"
    if not record.is_file():
        return []
    pex = json.loads(record.read_text())
    known = [f"{pex['version']}|{p}|{pex['sha256']}|{pex['size']}" for p in ("linux_x86_64", "linux_arm64")]
    return [
        f"--pex-cli-version={pex['version']}",
        f"--pex-cli-known-versions={known!r}",
        f"--pex-cli-url-template=file://{pex['path']}",
    ]


def copy_repo(dest: Path) -> Path:
    """Copy what a user's repo would hold (config, plugin, example, schemas) into dest/repo."""
    root = dest / "repo"
    root.mkdir()
    for name in ("pants.toml", "BUILD", "pants-plugins", "examples", "schemas"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "*_test.py"))
        else:
            shutil.copy2(src, root / name)
    return root


def pants_args(root: Path, tmp: Path, *extra: str, pantsd: bool = False) -> list[str]:
    """Private stores, so every test starts cold and leaves nothing behind; no pantsd unless asked
    (a module that runs Pants a dozen times on one repo: seconds a run instead of ~12 s)."""
    return [
        "--pantsd" if pantsd else "--no-pantsd",
        "--no-pantsrc",
        # The copied pants.toml pins 2.17.1; Pants refuses to run under another pants_version.
        f"--pants-version={PANTS_VERSION}",
        *pex_cli_args(),
        f"--local-store-dir={tmp / 'store'}",
        f"--named-caches-dir={tmp / 'named'}",
        f"--pants-workdir={root / '.pants.d'}",
        f"--pythonpath=['{root / 'pants-plugins'}']",
        *extra,
    ]


def stop_pantsd(root: Path) -> None:
    for pid_file in (root / ".pids").rglob("pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


def pants_env(tmp: Path) -> dict:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp / "home"),
        "LC_ALL": "C.UTF-8",
        "NO_SCIE_WARNING": "1",
    }


def start_pants(root: Path, args: list[str], env: dict, *goal: str) -> subprocess.Popen:
    """Pants started in a session (process group) of its own, so a test can signal or kill the group."""
    return subprocess.Popen(
        [*PANTS, *args, *goal],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_pants(root: Path, args: list[str], env: dict, *goal: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PANTS, *args, *goal], cwd=root, env=env, capture_output=True, text=True, timeout=600)


def write_jar_service(root: Path, name: str, url: str, sha: str, extra: str = "") -> str:
    """A service folder with a ready-made jar, its own `dragonwell_jdk` pin and an image; its address."""
    svc = root / name
    svc.mkdir()
    fake_jdk.make_jar(svc / "app.jar")
    (svc / "BUILD").write_text(
        f'dragonwell_jdk(name="jdk", url="{url}", sha256="{sha}"{extra})\n'
        'file(name="app", source="app.jar")\n'
        'occlum_java_image(name="enclave", jdk=":jdk", jar=":app")\n'
    )
    return f"{name}:enclave"


def pin_example_jdk(root: Path, archive: Path, sha: str, libc: str = "musl") -> None:
    """Point the examples' shared dragonwell_jdk at a test archive (the only change tests make to it)."""
    build = root / "examples/jdk/BUILD"
    before = build.read_text()
    libc_arg = f', libc="{libc}"' if libc != "musl" else ""
    after = before.replace(
        'dragonwell_jdk(name="dragonwell", version="11.0.16.12.8")',
        f'dragonwell_jdk(name="dragonwell", url="file://{archive}", sha256="{sha}"{libc_arg})',
    )
    assert after != before, "the examples' dragonwell_jdk target changed; update pin_example_jdk"
    build.write_text(after)


def run_and_get(
    root: Path, args: list[str], env: dict, target: str, port: int, stray: str, paths: Sequence[str] = ("/",)
) -> tuple[Optional[str], str, str]:
    """`pants run <target>`, a GET of each of `paths` on http://127.0.0.1:<port> once the first answers
    (180 s at most), then stop it; (the bodies joined by "\n---\n", or None, Pants' stdout, its
    stderr). `stray`: a `pkill -f` pattern for the service, which Pants starts in a process group of
    its own."""
    proc = start_pants(root, args, env, "run", target)
    body = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                bodies = []
                for path in paths:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                        bodies.append(resp.read().decode())
                body = "\n---\n".join(bodies)
                break
            except OSError:
                time.sleep(0.5)
    finally:
        # Pants forwards SIGINT to the interactive process; SIGKILL the group if it lingers.
        with contextlib.suppress(ProcessLookupError):  # it may have exited on its own (a failure)
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        subprocess.run(["pkill", "-f", stray], check=False)
    out, err = proc.communicate()
    return body, out, err
