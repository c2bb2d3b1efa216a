"""Package the README's example with the real Pants 2.17.1, as a user would, from a copy of the repo.

The Dragonwell pin is pointed at a test JDK served from file:// (no network here); everything else
is the example as committed: the jar is compiled by `shell_command` with the host's javac.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

import fake_jdk
from integration.pants_repo import copy_repo, pants_args, pants_env, run_pants
from occlum.config.validation import validate_config
from occlum_double.make_install import image_tree, make_fake_occlum_install, rebuild_with_copy_bom

REPO = Path(__file__).resolve().parents[2]

JDK_FILE = "Alibaba_Dragonwell_Standard_11.0.16.12.8_x64_alpine-linux.tar.gz"

pytestmark = pytest.mark.skipif(shutil.which("javac") is None, reason="the example's jar needs a host javac")


def _pants(root: Path, tmp: Path, pin: str, *goal: str) -> subprocess.CompletedProcess:
    return run_pants(root, pants_args(root, tmp, f"--dragonwell-known-versions=['{pin}']"), pants_env(tmp), *goal)


def test_example_packages_and_java_edit_reuses_the_jdk(tmp_path: Path) -> None:
    root = copy_repo(tmp_path)
    (tmp_path / "mirror").mkdir()
    served = fake_jdk.make_fake_jdk_archive(tmp_path / "mirror" / JDK_FILE)
    sha = hashlib.sha256(served.read_bytes()).hexdigest()
    pin = f"11.0.16.12.8|standard|musl|linux_x86_64|{sha}||file://{served}"

    first = _pants(root, tmp_path, pin, "package", "examples/hello-service:enclave")
    assert first.returncode == 0, first.stderr
    out = root / "dist" / "examples.hello-service" / "enclave"
    config = json.loads((out / "Occlum.json").read_text())
    summary = json.loads((out / "occlum-image.json").read_text())
    assert validate_config("0.31.0", config) == []
    assert (out / "image/usr/lib/spring/hello-service.jar").is_file()
    assert (out / "image/usr/lib/jvm/java-11-alibaba-dragonwell/jre/bin/java").is_file()
    assert summary["jar"]["main_class"] == "hello.HelloService"
    assert summary["jar"]["class_file_major"] == 55  # javac --release 11
    assert summary["command"][-3:] == ["-jar", "/usr/lib/spring/hello-service.jar", "8080"]
    # The copy_bom file beside it rebuilds the same image with (the test double of) Occlum's copy_bom,
    # run the way its header says.
    staged = tmp_path / "staged-copy"
    shutil.copytree(out, staged, symlinks=True)
    run, rebuilt = rebuild_with_copy_bom(staged, "enclave.copy_bom.yaml", make_fake_occlum_install(tmp_path / "opt"))
    assert run.returncode == 0, run.stdout + run.stderr
    before, after = image_tree(staged / "image"), image_tree(rebuilt)
    assert {p: after.get(p) for p in before} == before
    print(f"\ncopy_bom (test double) rebuilt {len(before)} paths of the example's image exactly; rc {run.returncode}")
    ran_first = set(re.findall(r"Starting: (Download|Extract and validate|Running the `shell_command`)", first.stderr))
    assert ran_first == {"Download", "Extract and validate", "Running the `shell_command`"}

    # Edit only the Java source: the jar is rebuilt, the JDK comes from the cache.
    src = root / "examples/hello-service/src/hello/HelloService.java"
    src.write_text(src.read_text().replace("Hello from an Occlum enclave!", "Hello again!"))
    second = _pants(root, tmp_path, pin, "package", "examples/hello-service:enclave")
    assert second.returncode == 0, second.stderr
    ran_second = set(
        re.findall(r"Starting: (Download|Extract and validate|Running the `shell_command`)", second.stderr)
    )
    assert ran_second == {"Running the `shell_command`"}, second.stderr
    jar = (out / "image/usr/lib/spring/hello-service.jar").read_bytes()
    with zipfile.ZipFile(io.BytesIO(jar)) as zf:
        assert b"Hello again!" in zf.read("hello/HelloService.class")


def test_bad_field_is_reported_without_traceback_and_nothing_in_dist(tmp_path: Path) -> None:
    root = copy_repo(tmp_path)
    build = root / "examples/hello-service/BUILD"
    build.write_text(build.read_text().replace('main_args=["8080"],', 'main_args=["8080"], user_space_size="256mb",'))
    result = _pants(
        root,
        tmp_path,
        "11.0.16.12.8|standard|musl|linux_x86_64|" + "0" * 64 + "||file:///none",
        "package",
        "examples/hello-service:enclave",
    )
    assert result.returncode != 0
    assert "The `user_space_size` field in target examples/hello-service:enclave" in result.stderr
    assert "'256mb'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "dist").exists()
