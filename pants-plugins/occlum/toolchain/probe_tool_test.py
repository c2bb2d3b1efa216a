"""The toolchain probe: release from occlum_version.h, an identity that changes with the toolchain, MRSIGNERs."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from occlum.toolchain import probe_tool, sandbox_guard
from occlum.toolchain.probe_tool import ProbeError, mrsigner_of_pem, probe_toolchain, read_version_header
from occlum_double.make_install import make_fake_occlum_install

REPO_ROOT = Path(__file__).resolve().parents[3]

TEMPLATE_KEY = REPO_ROOT / "tests" / "occlum_double" / "template_Enclave.pem"


def test_version_header() -> None:
    text = "#define OCCLUM_MAJOR_VERSION 0\n#define OCCLUM_MINOR_VERSION 31\n#define OCCLUM_PATCH_VERSION 0\n"
    assert read_version_header(text) == "0.31.0"
    with pytest.raises(ProbeError, match="OCCLUM_PATCH_VERSION"):
        read_version_header(text.replace("PATCH", "X"))


def test_probe_reads_release_and_fingerprint_tracks_the_toolchain(tmp_path: Path) -> None:
    install = make_fake_occlum_install(tmp_path / "occlum", "0.31.0")
    occlum = str(install / "build" / "bin" / "occlum")
    first = probe_toolchain(occlum)
    assert first["release"] == "0.31.0" and first["install_dir"] == str(install)
    assert first["template_mrsigner"] == mrsigner_of_pem(TEMPLATE_KEY.read_text())
    assert probe_toolchain(occlum)["fingerprint"] == first["fingerprint"]
    # A new LibOS binary under the same version string is a different toolchain (a stale cache
    # hit would otherwise follow, as seen with version-only fingerprints).
    lib = next((install / "build" / "lib").glob("libocclum-libos.so.*"))
    lib.write_bytes(lib.read_bytes() + b"patched")
    assert probe_toolchain(occlum)["fingerprint"] != first["fingerprint"]


def test_runtime_only_install_is_explained(tmp_path: Path) -> None:
    install = make_fake_occlum_install(tmp_path / "occlum", "0.31.0")
    (install / "include" / "occlum_version.h").unlink()
    with pytest.raises(ProbeError, match="runtime-only install"):
        probe_toolchain(str(install / "build" / "bin" / "occlum"))


def test_mrsigner_matches_openssl_modulus(tmp_path: Path) -> None:
    out = subprocess.run(
        ["openssl", "rsa", "-in", str(TEMPLATE_KEY), "-noout", "-modulus"], capture_output=True, text=True, check=True
    ).stdout
    n = int(out.strip().split("=", 1)[1], 16)
    assert mrsigner_of_pem(TEMPLATE_KEY.read_text()) == hashlib.sha256(n.to_bytes(384, "little")).hexdigest()
    pkcs8 = subprocess.run(
        ["openssl", "pkey", "-in", str(TEMPLATE_KEY)], capture_output=True, text=True, check=True
    ).stdout
    pub = subprocess.run(
        ["openssl", "rsa", "-in", str(TEMPLATE_KEY), "-pubout"], capture_output=True, text=True, check=True
    ).stdout
    assert mrsigner_of_pem(pkcs8) == mrsigner_of_pem(pub) == mrsigner_of_pem(TEMPLATE_KEY.read_text())


def test_encrypted_and_non_rsa_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="encrypted"):
        mrsigner_of_pem("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
    with pytest.raises(ProbeError, match="not a PEM"):
        mrsigner_of_pem("hello")


def test_runs_as_a_script_beside_its_guard(tmp_path: Path) -> None:
    tools = tmp_path / "__occlum_tools"
    tools.mkdir()
    for module in (probe_tool, sandbox_guard):
        shutil.copy(str(module.__file__), str(tools))
    argv = [sys.executable, "-I", "__occlum_tools/probe_tool.py", "mrsigner", "--key", str(TEMPLATE_KEY)]
    done = subprocess.run(argv, cwd=str(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"mrsigner": mrsigner_of_pem(TEMPLATE_KEY.read_text())}
