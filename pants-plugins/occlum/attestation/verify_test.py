"""The verifier's check: a matching set passes; each kind of tampering is caught and named."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from attestation_samples import enclave_facts, sbom_inputs
from occlum.attestation.ra_config import Measured, render_ra_config
from occlum.attestation.sbom import components_sha256, render_sbom
from occlum.attestation.verify import main
from occlum.records import dump_json

SIGNED = b"\x7fELF signed enclave " * 100


def _tarball(path: Path, signed: bytes = SIGNED, config: dict | None = None) -> str:
    config = config or {"metadata": {"debuggable": False, "product_id": 7, "version_number": 3}}
    with tarfile.open(path, "w:gz") as tf:
        for name, data in (
            ("enclave/Occlum.json", json.dumps(config).encode()),
            ("enclave/build/lib/libocclum-libos.signed.so", signed),
            ("enclave/.sgx_mode", b"HW"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_set(folder: Path, release: str = "0.31.0", debuggable: bool = False) -> Path:
    """A package and its three records, as `pants package` writes them, all agreeing."""
    package = folder / "enclave.tar.gz"
    config = {"metadata": {"debuggable": debuggable, "product_id": 7, "version_number": 3}}
    sha = _tarball(package, config=config)
    signed = hashlib.sha256(SIGNED).hexdigest()
    facts = enclave_facts(package_sha256=sha, signed_enclave_sha256=signed)
    sbom = render_sbom(sbom_inputs(facts, debuggable=debuggable, occlum_release=release))
    meas = {
        "format_version": 1,
        "mrenclave": facts.mrenclave,
        "mrsigner": facts.mrsigner,
        "occlum_release": release,
        "sgx_mode": "HW",
        "debuggable": debuggable,
        "product_id": 7,
        "version_number": 3,
        "package": "enclave.tar.gz",
        "package_sha256": sha,
        "signed_enclave_sha256": signed,
        "sbom_components_sha256": components_sha256(sbom),
        "image": {"jdk": {"sha256": "f" * 64}},
    }
    (folder / "enclave.measurements.json").write_bytes(dump_json(meas))
    (folder / "enclave.cdx.json").write_bytes(dump_json(sbom))
    measured = Measured(facts.mrenclave, facts.mrsigner, 7, 3, debuggable, "HW")
    (folder / "enclave.ra_config.json").write_bytes(dump_json(render_ra_config(measured)))
    return package


def _run(package: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main([str(package)])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_matching_set_is_verified(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out = _run(write_set(tmp_path), capsys)
    assert code == 0, out
    assert "VERIFIED" in out and "FAIL" not in out and "WARN" not in out
    assert f"MRENCLAVE {'a' * 64}: enclave.measurements.json, enclave.ra_config.json, enclave.cdx.json agree" in out


def _edit(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


TAMPERING = {
    "package-bytes": lambda d: _tarball(
        d / "enclave.tar.gz", config={"metadata": {"debuggable": False, "product_id": 7, "version_number": 3}, "x": 1}
    ),
    "swapped-enclave": lambda d: _tarball(d / "enclave.tar.gz", signed=b"another enclave"),
    "ra-config-mrenclave": lambda d: _edit(
        d / "enclave.ra_config.json", lambda doc: doc["sgx_mrs"][0].update(mr_enclave="9" * 64)
    ),
    "sbom-mrsigner": lambda d: _edit(
        d / "enclave.cdx.json",
        lambda doc: [
            p.update(value="9" * 64)
            for p in doc["metadata"]["component"]["properties"]
            if p["name"] == "occlum:mrsigner"
        ],
    ),
    "measurements-isvsvn": lambda d: _edit(d / "enclave.measurements.json", lambda doc: doc.update(version_number=4)),
    "ra-config-missing": lambda d: (d / "enclave.ra_config.json").unlink(),
    # The SBOM's contents, not only its enclave properties: a file's hash, the JDK's, the release.
    "sbom-file-hash": lambda d: _edit(
        d / "enclave.cdx.json", lambda doc: _first(doc, "file")["hashes"][0].update(content="9" * 64)
    ),
    "sbom-jdk-hash": lambda d: _edit(
        d / "enclave.cdx.json", lambda doc: _first(doc, "platform")["hashes"][0].update(content="9" * 64)
    ),
    "sbom-extra-library": lambda d: _edit(
        d / "enclave.cdx.json", lambda doc: doc["components"].append({"type": "library", "name": "evil.so"})
    ),
    "measurements-release": lambda d: _edit(
        d / "enclave.measurements.json", lambda doc: doc.update(occlum_release="0.30.1")
    ),
}
NAMED = {
    "package-bytes": "package sha256 differs",
    "swapped-enclave": "signed enclave (build/lib/libocclum-libos.signed.so) sha256 differs",
    "ra-config-mrenclave": "MRENCLAVE differs",
    "sbom-mrsigner": "MRSIGNER differs",
    "measurements-isvsvn": "ISVSVN (version_number) differs",
    "ra-config-missing": "enclave.ra_config.json is missing",
    "sbom-file-hash": "SBOM components sha256 differs",
    "sbom-jdk-hash": "JDK archive sha256 differs",
    "sbom-extra-library": "SBOM components sha256 differs",
    "measurements-release": "Occlum release differs",
}


def _first(doc: dict, kind: str) -> dict:
    return next(c for c in doc["components"] if c["type"] == kind)


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_tampering_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture, kind: str) -> None:
    package = write_set(tmp_path)
    TAMPERING[kind](tmp_path)
    code, out = _run(package, capsys)
    assert code == 1, out
    assert NAMED[kind] in out and "NOT VERIFIED" in out


def test_a_stage_only_sbom_does_not_vouch_for_a_package(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    package = write_set(tmp_path)
    (tmp_path / "enclave.cdx.json").write_bytes(dump_json(render_sbom(sbom_inputs(None))))
    code, out = _run(package, capsys)
    assert code == 1 and "was not measured" in out


def test_old_releases_have_no_ra_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    package = write_set(tmp_path, release="0.26.4")
    (tmp_path / "enclave.ra_config.json").unlink()
    code, out = _run(package, capsys)
    assert code == 0, out
    assert "predates the ra_config format" in out


def test_a_debuggable_enclave_passes_with_a_loud_warning(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out = _run(write_set(tmp_path, debuggable=True), capsys)
    assert code == 0, out
    assert "WARN  the enclave is DEBUGGABLE" in out and "with 1 warning(s)" in out


@pytest.mark.parametrize(
    "setup, words",
    [
        (lambda d: (d / "enclave.measurements.json").unlink(), "enclave.measurements.json is missing"),
        (lambda d: (d / "enclave.cdx.json").write_text("{not json"), "cannot read"),
        (lambda d: (d / "enclave.tar.gz").write_bytes(b"not a tarball"), "cannot read"),
    ],
)
def test_unusable_input_is_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, setup, words) -> None:
    package = write_set(tmp_path)
    setup(tmp_path)
    code, out = _run(package, capsys)
    assert code == 2 and words in out and "Traceback" not in out and out.count("\n") == 1, out


def test_runs_as_a_module(tmp_path: Path) -> None:
    package = write_set(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "occlum.attestation.verify", str(package)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert r.returncode == 0 and "VERIFIED" in r.stdout, r.stdout + r.stderr


def test_measured_enclave_facts_are_the_ones_checked() -> None:
    # The sample's facts must differ from each other, or a swapped pair would go unnoticed.
    facts = dataclasses.asdict(enclave_facts())
    hashes = [facts[k] for k in ("mrenclave", "mrsigner", "package_sha256", "signed_enclave_sha256")]
    assert len(set(hashes)) == len(hashes)
