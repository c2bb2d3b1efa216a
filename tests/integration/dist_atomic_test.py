"""dist/ is atomic: a `pants package` that fails, at any step, leaves the previous output as it was.

Real Pants 2.17.1 on a repo copy with one staged image (no javac needed: the jar is a file). After
a good package, each bad input below must fail and leave dist/ byte for byte as it was. Some of
them (a NUL or a 300-character component in a `files` path, a 4,010-character archive member) used
to fail only while Pants wrote dist/, after it had cleared the previous output; now they are refused
before anything is written. The toolchain steps are covered with the Occlum test double: a failing
`occlum build` must not touch the previous package.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import fake_jdk
from integration.pants_repo import copy_repo, pants_args, pants_env, run_pants, stop_pantsd
from occlum_double.make_install import make_fake_occlum_install

BUILD = """\
dragonwell_jdk(name="jdk", url="file://{archive}", sha256="{sha}")
file(name="app", source="app.jar")
file(name="config", source="application.yml")
occlum_java_image(name="enclave", jdk=":jdk", jar=":app", files={files!r}{extra})
"""


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = (
            f"link {os.readlink(p)}"
            if p.is_symlink()
            else "dir"
            if p.is_dir()
            else hashlib.sha256(p.read_bytes()).hexdigest()
        )
    return out


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory):
    # One repo and one pantsd for the module: each case below leaves dist/ as it found it.
    tmp_path = tmp_path_factory.mktemp("dist_atomic")
    root = copy_repo(tmp_path)
    (root / "svc").mkdir()
    fake_jdk.make_jar(root / "svc/app.jar")
    (root / "svc/application.yml").write_text("greeting: hi\n")
    good = fake_jdk.make_fake_jdk_archive(tmp_path / "good.tar.gz")
    long_member = fake_jdk.make_fake_jdk_archive(
        tmp_path / "long.tar.gz",
        extra_members=[fake_jdk.TarMember("lib/" + "/".join(["d" * 200] * 20) + "/x", data=b"x")],
    )
    # 40 levels: under the old bound of 64, this crashed Pants' engine and left dist/ partial.
    deep_member = fake_jdk.make_fake_jdk_archive(
        tmp_path / "deep.tar.gz", extra_members=[fake_jdk.TarMember("lib/" + "d/" * 40 + "x", data=b"x")]
    )
    install = make_fake_occlum_install(tmp_path / "opt", "0.31.0")
    args = pants_args(root, tmp_path, f"--occlum-executable-search-paths=['{install / 'build' / 'bin'}']", pantsd=True)
    env = pants_env(tmp_path)
    yield root, args, env, {"good": good, "long": long_member, "deep": deep_member}
    stop_pantsd(root)


def _write(root: Path, archive: Path, files: dict, extra: str = "") -> None:
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    (root / "svc/BUILD").write_text(BUILD.format(archive=archive, sha=sha, files=files, extra=extra))


def _package(root: Path, args: list[str], env: dict, *more: str) -> subprocess.CompletedProcess:
    return run_pants(root, [*args, *more], env, "package", "svc:enclave")


GOOD_FILES = {"/etc/app/application.yml": ":config"}
BAD_INPUTS = [
    pytest.param({"/etc/a\x00b": ":config"}, "good", "", "control character", id="files-path-with-nul"),
    pytest.param({"/etc/" + "a" * 300: ":config"}, "good", "", "300 bytes", id="files-300-char-component"),
    pytest.param({"/.": ":config"}, "good", "", "`.` or `..`", id="files-root-dot"),
    pytest.param(GOOD_FILES, "long", "", "byte path", id="jdk-member-of-4010-chars"),
    pytest.param(GOOD_FILES, "deep", "", "nested 17 levels deep", id="jdk-member-40-folders-deep"),
    pytest.param({"/" + "d/" * 40 + "x": ":config"}, "good", "", "41 components", id="files-path-41-deep"),
    pytest.param(GOOD_FILES, "good", ', output_path="' + "o/" * 39 + 'o"', "40 components", id="output-path-40-deep"),
    pytest.param(GOOD_FILES, "good", ', jvm_options=["-Xmx0"]', "-Xmx", id="bad-jvm-option"),
    pytest.param(
        GOOD_FILES,
        "good",
        ', mounts=[{"target": "/d", "type": "sefs", "source": "./d", "options": {"cache_size": "128MB"}}]',
        "kernel heap",
        id="config-that-does-not-fit",
    ),
]


@pytest.mark.parametrize("files, archive, extra, words", BAD_INPUTS)
def test_a_failing_stage_only_package_leaves_dist_as_it_was(repo, files, archive, extra, words) -> None:
    root, args, env, archives = repo
    _write(root, archives["good"], GOOD_FILES)
    first = _package(root, args, env, "--occlum-stage-only=yes")
    assert first.returncode == 0, first.stderr
    dist = root / "dist"
    before = _tree(dist)
    assert "svc/enclave/image/etc/app/application.yml" in before

    _write(root, archives[archive], files, extra)
    bad = _package(root, args, env, "--occlum-stage-only=yes")
    assert bad.returncode != 0, bad.stderr
    assert words in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr and "IntrinsicError" not in bad.stderr
    assert _tree(dist) == before


def test_a_failing_toolchain_step_leaves_the_previous_package(repo, tmp_path: Path) -> None:
    root, args, env, archives = repo
    shutil.rmtree(root / "dist", ignore_errors=True)
    _write(root, archives["good"], GOOD_FILES)
    first = _package(root, args, env, "--occlum-stage-only=no")
    assert first.returncode == 0, first.stderr
    before = _tree(root / "dist")
    assert "svc/enclave.tar.gz" in before and "svc/enclave.measurements.json" in before

    # A signing tool that fails: `occlum build` fails after the staging steps succeeded.
    failing = tmp_path / "failing_sign_tool"
    failing.write_text("#!/bin/sh\necho 'HSM not reachable' >&2\nexit 1\n")
    failing.chmod(0o755)
    _write(root, archives["good"], {**GOOD_FILES, "/etc/app/other.yml": ":config"})
    bad = _package(root, args, env, "--occlum-stage-only=no", f"--occlum-sign-tool={failing}")
    assert bad.returncode != 0 and "occlum build" in bad.stderr, bad.stderr
    assert _tree(root / "dist") == before
    shutil.rmtree(root / "dist")
