"""A build killed with SIGKILL in the middle of a step never poisons the cache or leaves a partial dist/.

With the real Pants 2.17.1, the Occlum test double and the host's JDK (about 75 MB, so the download,
extraction and `occlum build` take long enough to be caught mid-way): the same repo copy and the
same local store see three builds killed (the whole process group, SIGKILL) at the start of
`Download`, of `Extract and validate` and of `occlum build`. A fourth, normal build must then succeed
and produce exactly the bytes (tarball sha256, MRENCLAVE) of an uninterrupted build done in a fresh
repo copy with a fresh store.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from host_jdk import host_java_home, make_host_jdk_archive
from integration.pants_repo import PANTS, copy_repo, pants_args, pants_env, pin_example_jdk, start_pants
from occlum_double.make_install import make_fake_occlum_install

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    shutil.which("javac") is None or host_java_home() is None, reason="needs a host JDK (javac, java)"
)

TARGET = "examples/hello-service:enclave"
DIST = Path("dist/examples.hello-service")
KILL_AT = ("Download", "Extract and validate", "occlum build")
# What each step runs: Pants is killed once the step's process is running (not while its sandbox is
# still being made), so that the step is orphaned and must stop by itself.
STEP_PROCESS = {"Download": "fetch_tool.py", "Extract and validate": "extract_tool.py", "occlum build": "occlum build"}


def _setup(work: Path, archive: Path, sha: str, install: Path) -> tuple[Path, list[str], dict]:
    """A repo copy under `work` with its own store, named caches, sandboxes and HOME."""
    work.mkdir()
    root = copy_repo(work)
    pin_example_jdk(root, archive, sha, libc="glibc")
    (work / "sandboxes").mkdir()
    args = pants_args(
        root,
        work,
        f"--occlum-executable-search-paths=['{install / 'build' / 'bin'}']",
        "--occlum-stage-only=no",
        # Sandboxes under `work`, so processes a killed Pants leaves behind can be found and stopped.
        f"--local-execution-root-dir={work / 'sandboxes'}",
        # A build that runs long enough to be killed in the middle (the double sleeps 5 s first).
        "--occlum-env-vars=['OCCLUM_DOUBLE_BUILD_SECONDS=5']",
    )
    return root, args, pants_env(work)


def _start(root: Path, args: list[str], env: dict) -> subprocess.Popen:
    return start_pants(root, args, env, "package", TARGET)


# The example's jar is built by a `shell_command`: Pants' own step, which Pants 2.17 leaves running
# when it is killed. Only the backend's steps (its scripts and the Occlum tools) must stop by themselves.
_JAR_BUILD = re.compile(r"javac|jar --create|mkdir -p classes")


def _strays(under: Path, grace: float) -> list[str]:
    """Processes still running under `under` after `grace` seconds (the sandbox guard polls every 0.25 s)."""
    deadline = time.monotonic() + grace
    while True:
        found = _processes_under(under)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _wait_for_process(under: Path, words: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(words in p for p in _processes_under(under)):
            return True
        time.sleep(0.02)
    return False


def _under(under: Path) -> list[tuple[int, str, bool]]:
    """(pid, command line, alive) of every process whose command line or cwd lies under `under`
    (not this one); a zombie is not alive."""
    found = []
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            cmd = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(pid_dir / "cwd")
            state = next(line for line in (pid_dir / "status").read_text().splitlines() if line.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if str(under) in cmd or cwd.startswith(str(under)):
            found.append((int(pid_dir.name), cmd, "zombie" not in state))
    return found


def _processes_under(under: Path) -> list[str]:
    """The backend's steps still running under `under` (the user's jar build excepted)."""
    return [f"{pid}: {cmd[:200]}" for pid, cmd, alive in _under(under) if alive and not _JAR_BUILD.search(cmd)]


def _kill_strays(under: Path) -> list[int]:
    """SIGKILL, by pid, every process whose command line or cwd lies under `under` (not this one)."""
    killed = []
    for pid, _, _ in _under(under):
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    return killed


def _kill_at(root: Path, args: list[str], env: dict, step: str, work: Path) -> tuple[str, list[int]]:
    """Run `package`, SIGKILL its process group as soon as `Starting: <step>` is logged."""
    proc = _start(root, args, env)
    seen: list[str] = []
    running = False
    marker = re.compile(rf"Starting: {re.escape(step)}\b")
    # Drain stdout in the background so a full pipe can never stall Pants.
    assert proc.stdout is not None and proc.stderr is not None
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    deadline = time.monotonic() + 240
    try:
        for line in proc.stderr:
            seen.append(line)
            if marker.search(line):
                running = _wait_for_process(work, STEP_PROCESS[step], timeout=15)
                os.killpg(proc.pid, signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                break
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        rc = proc.wait(timeout=60)
        # The steps run in sessions of their own, so the kill above does not reach them: each must
        # stop by itself (toolchain/sandbox_guard.py), well within a second.
        left = _strays(work, grace=1.0)
        strays = _kill_strays(work)
    log = "".join(seen)
    assert not left, f"steps outlived the killed Pants at `{step}`:\n" + "\n".join(left)
    if step == "occlum build":  # the double's build sleeps 5 s: it was surely running when Pants died
        assert running, f"`{step}` was never seen running"
    assert marker.search(log), f"never saw `Starting: {step}` (exit {rc}):\n{log[-4000:]}"
    assert rc == -signal.SIGKILL, f"Pants ended on its own (exit {rc}) before the kill:\n{log[-3000:]}"
    return log, strays


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_killed_builds_leave_no_partial_dist_and_do_not_poison_the_cache(tmp_path: Path) -> None:
    t0 = time.monotonic()
    archive, sha = make_host_jdk_archive(tmp_path / "mirror" / "host-jdk.tar.gz")
    install = make_fake_occlum_install(tmp_path / "opt" / "occlum", "0.31.0")
    print(f"\nJDK archive: {archive.stat().st_size / 2**20:.1f} MiB")

    # The reference: an uninterrupted build in a fresh repo copy with a fresh store, run alongside.
    ref_root, ref_args, ref_env = _setup(tmp_path / "fresh", archive, sha, install)
    ref = _start(ref_root, ref_args, ref_env)

    root, args, env = _setup(tmp_path / "killed", archive, sha, install)
    try:
        for step in KILL_AT:
            t = time.monotonic()
            log, strays = _kill_at(root, args, env, step, tmp_path / "killed")
            dist_files = [p for p in (root / "dist").rglob("*") if not p.is_dir()] if (root / "dist").exists() else []
            print(
                f"killed at `Starting: {step}` after {time.monotonic() - t:.1f}s; stray processes killed: "
                f"{len(strays)}; files in dist/: {len(dist_files)}"
            )
            assert dist_files == [], f"a killed build left files in dist/: {dist_files}"

        t = time.monotonic()
        final = subprocess.run(
            [*PANTS, *args, "package", TARGET], cwd=root, env=env, capture_output=True, text=True, timeout=400
        )
        print(f"final build after the kills: {time.monotonic() - t:.1f}s, exit {final.returncode}")
        assert final.returncode == 0, final.stderr[-5000:]
        reran = set(re.findall(r"Starting: (Download|Extract and validate|occlum new|occlum build)", final.stderr))
        print("final build re-ran:", sorted(reran))
        # The steps that completed before a kill came from the store (and were not poisoned); the
        # killed `occlum build` ran again.
        assert "Download" not in reran and "Extract and validate" not in reran, reran
        assert "occlum build" in reran, reran

        ref_out, ref_err = ref.communicate(timeout=400)
        assert ref.returncode == 0, ref_err[-5000:]
    finally:
        if ref.poll() is None:
            os.killpg(ref.pid, signal.SIGKILL)
            ref.wait()
        _kill_strays(tmp_path)

    tar, ref_tar = root / DIST / "enclave.tar.gz", ref_root / DIST / "enclave.tar.gz"
    meas = json.loads((root / DIST / "enclave.measurements.json").read_text())
    ref_meas = json.loads((ref_root / DIST / "enclave.measurements.json").read_text())
    print(f"tarball {tar.stat().st_size} bytes, sha256 {_sha256(tar)[:16]}…; mrenclave {meas['mrenclave'][:16]}…")
    assert tar.stat().st_size > 1_000_000
    assert _sha256(tar) == _sha256(ref_tar)
    assert re.fullmatch(r"[0-9a-f]{64}", meas["mrenclave"])
    assert meas["mrenclave"] == ref_meas["mrenclave"]
    assert meas["mrsigner"] == ref_meas["mrsigner"]
    print(f"total {time.monotonic() - t0:.1f}s")
