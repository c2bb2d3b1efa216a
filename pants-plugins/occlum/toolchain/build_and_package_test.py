"""`occlum build` then the package, in one sandbox (toolchain/build_and_package.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from occlum.toolchain import build_and_package
from occlum.toolchain.package_tool import write_package
from occlum_double.make_install import make_fake_occlum_install

TOOL = Path(build_and_package.__file__)
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C"}


def _new(tmp_path: Path) -> tuple[Path, Path]:
    install = make_fake_occlum_install(tmp_path / "opt", "0.31.0")
    occlum = install / "build/bin/occlum"
    subprocess.run([str(occlum), "new", "occlum_instance"], cwd=tmp_path, env=ENV, check=True, capture_output=True)
    (tmp_path / "occlum_instance/image/bin/app").write_bytes(b"\x7fELF app " * 1000)
    return occlum, tmp_path / "occlum_instance"


def _run(tmp_path: Path, *build: str, name: str = "svc", measure: tuple = ()) -> subprocess.CompletedProcess:
    argv = [sys.executable, str(TOOL), "--instance", "occlum_instance", "--release", "0.31.0", "--name", name]
    return subprocess.run([*argv, *measure, "--", *build], cwd=tmp_path, env=ENV, capture_output=True, text=True)


def test_builds_then_writes_the_package_the_package_tool_writes(tmp_path: Path) -> None:
    occlum, inst = _new(tmp_path)
    r = _run(tmp_path, str(occlum), "build", "--sgx-mode", "HW")
    assert r.returncode == 0, r.stderr
    assert (inst / "build/lib/libocclum-libos.signed.so").is_file()  # the build ran, in the instance
    write_package(str(inst), "svc", "0.31.0", False, str(tmp_path / "by-hand.tar.gz"))
    assert (tmp_path / "svc.tar.gz").read_bytes() == (tmp_path / "by-hand.tar.gz").read_bytes()


def test_a_failed_build_keeps_its_exit_code_and_writes_no_package(tmp_path: Path) -> None:
    occlum, _ = _new(tmp_path)
    r = _run(tmp_path, str(occlum), "build", "--no-such-flag")
    assert r.returncode == 1
    assert "Unknown option: --no-such-flag" in r.stdout + r.stderr
    assert not (tmp_path / "svc.tar.gz").exists()
    r = _run(tmp_path, "/no/such/occlum", "build")
    assert r.returncode == 127 and "error: cannot start /no/such/occlum" in r.stderr


def test_a_failed_package_exits_package_failed_and_leaves_no_tarball(tmp_path: Path) -> None:
    _new(tmp_path)
    r = _run(tmp_path, "/bin/true")  # "built" nothing: the package's members are missing
    assert r.returncode == build_and_package.PACKAGE_FAILED, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: `occlum package` of Occlum 0.31.0 would fail: ")
    assert not (tmp_path / "svc.tar.gz").exists()
    assert os.listdir(tmp_path / "occlum_instance")  # the instance is left as the build left it


def test_usage_errors(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(TOOL), "--instance", "x"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr
    r = _run(tmp_path)
    assert r.returncode == 2 and "no build command" in r.stderr


def test_the_measurements_are_read_beside_the_package_as_occlum_print_reads_them(tmp_path: Path) -> None:
    occlum, inst = _new(tmp_path)
    r = _run(tmp_path, str(occlum), "build", "--sgx-mode", "HW", measure=("--print-with", str(occlum)))
    assert r.returncode == 0, r.stderr
    for what in ("mrenclave", "mrsigner"):
        by_hand = subprocess.run([str(occlum), "print", what], cwd=inst, env=ENV, capture_output=True, text=True)
        assert by_hand.returncode == 0 and len(by_hand.stdout.strip()) == 64, by_hand
        assert (tmp_path / build_and_package.MEASURED / what).read_text() == by_hand.stdout
    # Outside the instance: the package holds none of it, and `occlum print`'s ./dumpfile is gone.
    write_package(str(inst), "svc", "0.31.0", False, str(tmp_path / "by-hand.tar.gz"))
    assert (tmp_path / "svc.tar.gz").read_bytes() == (tmp_path / "by-hand.tar.gz").read_bytes()
    assert not (inst / "dumpfile").exists()


def test_before_occlum_print_sgx_sign_dumps_the_sigstruct(tmp_path: Path) -> None:
    occlum, _ = _new(tmp_path)
    sgx_sign = occlum.parents[2] / "sgxsdk-tools/bin/x64/sgx_sign"
    r = _run(tmp_path, str(occlum), "build", "--sgx-mode", "HW", measure=("--dump-with", str(sgx_sign)))
    assert r.returncode == 0, r.stderr
    assert "enclave_hash.m" in (tmp_path / build_and_package.MEASURED / "dump.txt").read_text()


def test_a_failed_measurement_exits_measure_failed_with_its_output_and_leaves_no_tarball(tmp_path: Path) -> None:
    occlum, _ = _new(tmp_path)
    failing = tmp_path / "occlum-print"
    failing.write_text("#!/bin/sh\necho 'No build/lib/libocclum-libos.signed.so existed' >&2\nexit 3\n")
    failing.chmod(0o755)
    r = _run(tmp_path, str(occlum), "build", "--sgx-mode", "HW", measure=("--print-with", str(failing)))
    assert r.returncode == build_and_package.MEASURE_FAILED, r.stderr
    assert "error: `occlum print mrenclave` failed with exit code 3" in r.stderr
    assert "No build/lib/libocclum-libos.signed.so existed" in r.stderr
    assert not (tmp_path / "svc.tar.gz").exists()
