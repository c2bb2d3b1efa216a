"""build-support/build-validator-pex makes a validator that runs without Pants, on another Python."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from built_package import LIBS, NAME, build_service_package

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "tests" / "data" / "occlum" / "templates" / "0.31.0.json"


def _pythons() -> list[str]:
    """Bare CPython 3.9-3.13 interpreters (no Pants installed) found under pyenv."""
    roots = []
    try:
        roots.append(subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    roots.append(os.path.expanduser("~/.pyenv"))
    found: dict[str, str] = {}
    for root in roots:
        for minor in ("3.9", "3.10", "3.11", "3.12", "3.13"):
            for exe in sorted(glob.glob(f"{root}/versions/{minor}.*/bin/python{minor}"), reverse=True):
                if os.access(exe, os.X_OK):
                    found.setdefault(minor, exe)
    return [found[m] for m in sorted(found, key=lambda v: tuple(map(int, v.split("."))))]


PYTHONS = _pythons()


@pytest.fixture(scope="module")
def pex(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pex") / "occlum-validate.pex"
    proc = subprocess.run(
        [str(REPO / "build-support/build-validator-pex"), str(out)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def built_package(tmp_path_factory) -> Path:
    """A Spring Boot service packaged by `pants package` with the Occlum test double: its dist folder."""
    return build_service_package(tmp_path_factory.mktemp("built"), LIBS)


def test_pex_holds_only_the_validator_and_the_schemas(pex: Path) -> None:
    names = zipfile.ZipFile(pex).namelist()
    ours = sorted(n for n in names if n.startswith("occlum/") and n.endswith(".py"))
    assert ours == [
        "occlum/__init__.py",
        "occlum/attestation/__init__.py",
        "occlum/attestation/elf_sections.py",
        "occlum/attestation/occlum_chain.py",
        "occlum/attestation/package_reader.py",
        "occlum/attestation/protected_file.py",
        "occlum/attestation/ra_config.py",
        "occlum/attestation/sbom.py",
        "occlum/attestation/sefs_image.py",
        "occlum/attestation/sigstruct.py",
        "occlum/attestation/untrusted.py",
        "occlum/attestation/verify.py",
        "occlum/config/__init__.py",
        "occlum/config/model.py",
        "occlum/config/releases.py",
        "occlum/config/sizes.py",
        "occlum/config/validation.py",
        "occlum/jar/__init__.py",
        "occlum/jar/dependency_lock.py",
        "occlum/jar/identity.py",
        "occlum/jar/inspect_jar.py",
        "occlum/validate.py",
    ]
    with zipfile.ZipFile(pex) as z:
        for schema in (REPO / "schemas").glob("*.json"):
            assert z.read(f"occlum/schemas/{schema.name}") == schema.read_bytes(), schema.name
        for n in ours:
            assert "import pants" not in z.read(n).decode() and "from pants" not in z.read(n).decode(), n
    deps = {n.split("/")[1] for n in names if n.startswith(".deps/") and n.count("/") > 1}
    assert all(d.endswith("-py3-none-any.whl") for d in deps), deps
    assert {d.split("-")[0] for d in deps} == {"jsonschema", "attrs", "pyrsistent"}


@pytest.mark.skipif(not PYTHONS, reason="no CPython 3.9-3.13 under pyenv to run the PEX with")
@pytest.mark.parametrize("python", PYTHONS, ids=lambda p: Path(p).name)
def test_pex_runs_on_any_cpython_3_9_plus(pex: Path, built_package: Path, tmp_path: Path, python: str) -> None:
    # A bare interpreter: no Pants (nor jsonschema) of its own, so only the PEX supplies them.
    assert subprocess.run([python, "-c", "import pants"], capture_output=True).returncode != 0
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PEX_ROOT": str(tmp_path / "pex_root"), "LC_ALL": "C.UTF-8"}

    def run(*args: str) -> tuple[subprocess.CompletedProcess, float]:
        start = time.monotonic()
        proc = subprocess.run([python, str(pex), *args], capture_output=True, text=True, env=env, timeout=120)
        return proc, time.monotonic() - start

    ok, cold = run("--release", "0.31.0", str(TEMPLATE))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip() == f"{TEMPLATE}: ok"
    _, warm = run("--release", "0.31.0", str(TEMPLATE))

    bad_doc = json.loads(TEMPLATE.read_text())
    bad_doc["resource_limits"]["user_space_size"] = "1.5GB"
    bad = tmp_path / "Occlum.json"
    bad.write_text(json.dumps(bad_doc))
    invalid, _ = run("--release", "v0.31.0", str(bad))
    assert invalid.returncode == 1, invalid.stdout + invalid.stderr
    assert "$.resource_limits.user_space_size: '1.5GB'" in invalid.stdout
    assert "not a whole number" in invalid.stdout

    usage, _ = run("--release", "9.9.9", str(bad))
    assert usage.returncode == 2 and "unknown Occlum release '9.9.9'" in usage.stderr

    # The verifier's check, from the same PEX, on a package `pants package` built with the test double:
    # as built, then with a record that disagrees with the signed enclave.
    shutil.copytree(built_package, tmp_path / "set")
    package = tmp_path / "set" / f"{NAME}.tar.gz"
    verified, _ = run("verify-package", str(package))
    assert verified.returncode == 0 and "VERIFIED" in verified.stdout, verified.stdout + verified.stderr
    assert "the image's files -> the SBOM's file components" in verified.stdout.split("Links not checked")[0]
    ra = tmp_path / "set" / f"{NAME}.ra_config.json"
    doc = json.loads(ra.read_text())
    doc["sgx_mrs"][0]["mr_enclave"] = "9" * 64
    ra.write_text(json.dumps(doc))
    tampered, _ = run("verify-package", str(package))
    assert tampered.returncode == 1 and "MRENCLAVE differs" in tampered.stdout, tampered.stdout

    version = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"\nvalidator PEX: {pex.stat().st_size / 1e6:.2f} MB; run with CPython {version} ({python}): "
        f"first run (builds its venv in PEX_ROOT) {cold:.2f} s, later runs {warm:.2f} s"
    )
    print(f"invalid case -> exit 1: {invalid.stdout.strip()[:160]}")
