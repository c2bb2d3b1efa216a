"""The `occlum new` step: host-dependent /etc/localtime is pinned to UTC, runtime libs are copied."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from occlum.toolchain.sandbox_guard_test import alive, assert_stops_with_parent, start_under_parent, wait_for
from occlum.toolchain.skeleton_tool import UTC_TZIF
from occlum_double.make_install import make_fake_occlum_install

REPO_ROOT = Path(__file__).resolve().parents[3]

TOOL = REPO_ROOT / "pants-plugins" / "occlum" / "toolchain" / "skeleton_tool.py"


def _run(tmp_path: Path, *libs: str) -> subprocess.CompletedProcess:
    install = make_fake_occlum_install(tmp_path / "occlum", "0.31.0")
    # The double copies this file where the real CLI copies the build host's /etc/localtime.
    (install / "etc" / "localtime").write_bytes(b"TZif2 host zone Europe/Somewhere")
    argv = [
        sys.executable,
        str(TOOL),
        "--occlum",
        str(install / "build/bin/occlum"),
        "--install-dir",
        str(install),
        "--out",
        "inst",
        *[a for lib in libs for a in ("--lib", lib)],
    ]
    return subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)


def test_localtime_is_pinned_to_utc_in_image_and_initfs(tmp_path: Path) -> None:
    result = _run(tmp_path, "libz.so.1")
    assert result.returncode == 0, result.stderr
    for rel in ("inst/image/etc/localtime", "inst/initfs/etc/localtime"):
        assert (tmp_path / rel).read_bytes() == UTC_TZIF, rel
    assert (tmp_path / "inst/image/lib/libz.so.1").is_file()


def test_an_empty_destination_made_by_a_worker_is_used_and_a_full_one_refused(tmp_path: Path) -> None:
    # Buildbarn's workers create an action's declared output directories before it runs.
    (tmp_path / "inst").mkdir()
    result = _run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "inst/Occlum.json").is_file()
    again = _run(tmp_path)
    assert again.returncode == 2 and 'destination "inst" already exists' in again.stderr


def test_missing_runtime_lib_is_refused(tmp_path: Path) -> None:
    result = _run(tmp_path, "libnope.so")
    assert result.returncode == 2
    assert "'libnope.so' of `[occlum].runtime_libs`" in result.stderr and "libz.so.1" in result.stderr


def test_an_occlum_that_cannot_run_is_one_line(tmp_path: Path) -> None:
    argv = [sys.executable, str(TOOL), "--occlum", str(tmp_path / "nope"), "--install-dir", str(tmp_path)]
    result = subprocess.run([*argv, "--out", "inst"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot run `") and result.stderr.count("\n") == 1, result.stderr


def test_skeleton_tool_and_occlum_new_stop_when_pants_dies(tmp_path: Path) -> None:
    # `occlum new` hangs (and starts a child of its own); Pants is killed: nothing may stay behind.
    occlum = tmp_path / "occlum"
    occlum.write_text("#!/bin/sh\necho $$ > occlum.pid\nsleep 120 &\necho $! > sleep.pid\nwait\n")
    occlum.chmod(0o755)
    argv = [sys.executable, str(TOOL), "--occlum", str(occlum), "--install-dir", str(tmp_path), "--out", "inst"]
    parent, pid = start_under_parent(argv, tmp_path, tmp_path / "log")
    assert wait_for(lambda: (tmp_path / "sleep.pid").exists() and (tmp_path / "occlum.pid").exists(), 10)
    time.sleep(0.1)
    children = [int((tmp_path / n).read_text()) for n in ("occlum.pid", "sleep.pid")]
    assert all(alive(c) for c in children)
    assert_stops_with_parent(parent, pid, tmp_path / "log", *children)
