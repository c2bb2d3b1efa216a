"""A fresh CI runner with a warm remote cache rebuilds the enclave without running any step locally.

A real REAPI server (BuildGrid) runs on 127.0.0.1; Pants uses the repo's pants.ci.toml layer. Run A
packages with an empty remote. Run B uses a new, empty local store (another machine) after the
JDK archive was deleted from its file:// URL: it must still succeed, with every step a remote hit.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest

import fake_jdk
from integration.pants_repo import copy_repo, pants_args, pants_env, pin_example_jdk, run_pants
from occlum_double.make_install import make_fake_occlum_install
from remote_cache.buildgrid import running_buildgrid

REPO = Path(__file__).resolve().parents[2]

# Processes whose outcome (ran here, or came from the cache) the test reads from the log.
STEPS = (
    "Download",
    "Extract and validate",
    "occlum new",
    "occlum build",  # and the package, in the same sandbox
    "Running the `shell_command`",
)

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="the example's jar needs a host javac")


def counters(stderr: str) -> dict:
    return {k: int(v) for k, v in re.findall(r"^\s+(\w+): (\d+)$", stderr, re.M)}


def ran_locally(stderr: str) -> set:
    return {s for s in STEPS if re.search(rf"Completed: {re.escape(s)}", stderr)}


def test_fresh_runner_with_warm_remote_cache_runs_no_step(tmp_path: Path) -> None:
    if os.environ.get("CI") != "true" and shutil.which("pyenv") is None:
        pytest.skip("BuildGrid needs CPython 3.12 (found through pyenv here)")
    root = copy_repo(tmp_path)
    shutil.copy2(REPO / "pants.ci.toml", root / "pants.ci.toml")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = fake_jdk.make_fake_jdk_archive(mirror / "jdk.tar.gz")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    install = make_fake_occlum_install(tmp_path / "opt" / "occlum", "0.31.0")
    pin_example_jdk(root, archive, sha)
    env = pants_env(tmp_path)
    with running_buildgrid(tmp_path / "bgd") as (address, cas):

        def package(store: str) -> str:
            args = pants_args(
                root,
                tmp_path,
                "--pants-config-files=+['pants.ci.toml']",
                f"--remote-store-address={address}",
                f"--occlum-executable-search-paths=['{install / 'build' / 'bin'}']",
            )
            args = [
                a if not a.startswith("--local-store-dir=") else f"--local-store-dir={tmp_path / store}" for a in args
            ]
            result = run_pants(root, args, env, "package", "examples/hello-service:enclave")
            assert result.returncode == 0, result.stderr[-4000:]
            return result.stderr

        first = package("store-a")
        c1 = counters(first)
        assert ran_locally(first) == set(STEPS), first[-3000:]
        assert c1["remote_cache_write_successes"] >= len(STEPS), c1
        meas_a = json.loads((root / "dist/examples.hello-service/enclave.measurements.json").read_text())

        # Another machine: empty local store, and the JDK's URL no longer serves anything.
        archive.unlink()
        shutil.rmtree(root / "dist")
        second = package("store-b")
        c2 = counters(second)
        print(
            "\nrun B counters:",
            {k: v for k, v in c2.items() if k.startswith(("remote_cache", "local_execution", "local_cache"))},
        )
        assert ran_locally(second) == set(), second[-3000:]
        assert c2["remote_cache_requests_cached"] >= len(STEPS), c2
        assert c2.get("remote_cache_speculation_local_completed_first", 0) == 0, c2
        meas_b = json.loads((root / "dist/examples.hello-service/enclave.measurements.json").read_text())
        assert meas_b["mrenclave"] == meas_a["mrenclave"]
        assert any(cas.rglob("*")), "the CAS on disk holds the blobs"
