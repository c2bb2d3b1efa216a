"""verify-package on packages `pants package` built with the test double: an untouched package is
VERIFIED, and each forgery is NOT VERIFIED with the link that caught it named.

The double writes the formats the verifier reads as Occlum 0.31.0 and sgx_sign write them (a real
SIGSTRUCT in `.note.sgxmeta`, `.builtin_config`, integrity-only protected files, SEFS images), so
each forgery below is made on those formats, as a forger would make it on a real package.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from built_package import LIBS, NAME, build_service_package
from occlum.attestation.occlum_chain import (
    IMAGE_ROOT,
    LINK_BUILTIN,
    LINK_CONFIG,
    LINK_IMAGE,
    LINK_SBOM_FILES,
    LINK_SBOM_JAR,
    _protected,
    first_scan_readers,
)
from occlum.attestation.package_reader import read_package
from occlum.attestation.sbom import components_sha256
from occlum.attestation.sefs_image import read_image
from occlum.attestation.verify import main as verify_main
from occlum.records import dump_json
from occlum_double.double_elf import metadata_offset
from occlum_double.double_sefs import protected_file

LINK_IDENTITY = "the SIGSTRUCT -> the records (measurements, ra_config, SBOM)"


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, Path]:
    """The service as built, and an evil rebuild of it (another dependency inside)."""
    return {
        "benign": build_service_package(tmp_path_factory.mktemp("benign"), LIBS),
        "evil": build_service_package(tmp_path_factory.mktemp("evil"), {**LIBS, "evil-1.0.jar": 8}),
        "debuggable": build_service_package(tmp_path_factory.mktemp("debuggable"), LIBS, debuggable=True),
        # What the signer itself configured: a host file system over the service's folder, and a
        # variable the host sets.
        "hostfs": build_service_package(
            tmp_path_factory.mktemp("hostfs"),
            LIBS,
            extra='mounts=[{"target": "/usr/lib/spring", "type": "hostfs", "source": "/srv"}], '
            'untrusted_env=["JAVA_TOOL_OPTIONS"]',
        ),
    }


def _copy(builds: dict[str, Path], which: str, to: Path) -> Path:
    shutil.copytree(builds[which], to)
    return to / NAME


def _edit(path: Path, change: Callable[[dict], object]) -> None:
    doc = json.loads(path.read_bytes())
    change(doc)
    path.write_bytes(dump_json(doc))


def _run(base: Path, capsys: pytest.CaptureFixture, *extra: str) -> tuple[int, str]:
    code = verify_main([f"{base}.tar.gz", *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def _members(package: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(package, "r:gz") as tf:
        return [(m, tf.extractfile(m).read() if m.isfile() else b"") for m in tf.getmembers()]  # type: ignore[union-attr]


def _rewrite(package: Path, changes: dict[str, bytes]) -> None:
    """The package with some members' bytes replaced, everything else as it was."""
    members = _members(package)
    with tarfile.open(package, "w:gz") as tf:
        for info, data in members:
            rest = info.name.split("/", 1)[1] if "/" in info.name else ""
            if rest in changes:
                data = changes.pop(rest)
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if info.isfile() else None)
    assert not changes, f"no such members: {sorted(changes)}"


def _member(package: Path, rest: str) -> bytes:
    return next(data for info, data in _members(package) if info.name.split("/", 1)[-1] == rest)


def _rerecord_package_sha256(base: Path) -> None:
    sha = hashlib.sha256(Path(f"{base}.tar.gz").read_bytes()).hexdigest()
    _edit(Path(f"{base}.measurements.json"), lambda d: d.update(package_sha256=sha))
    _edit(
        Path(f"{base}.cdx.json"),
        lambda d: [
            p.update(value=sha)
            for p in d["metadata"]["component"]["properties"]
            if p["name"] == "occlum:package_sha256"
        ],
    )


def _image_file(package: Path, path_suffix: str) -> str:
    """The __ROOT member that holds the image file whose path ends with `path_suffix`."""
    first = read_package(str(package), first_scan_readers)
    md = first.read[f"{IMAGE_ROOT}/metadata"]
    everything = read_package(str(package), lambda rest: _protected(1 << 26) if rest.startswith(IMAGE_ROOT) else None)
    files = {rest.rsplit("/", 1)[1]: read for rest, read in everything.read.items()}
    entry = next(e for e in read_image(md.data, files) if e.path.endswith(path_suffix))
    return f"{IMAGE_ROOT}/{entry.file_name}"


def test_an_untouched_package_is_verified_with_every_link_named(builds, tmp_path, capsys) -> None:
    base = _copy(builds, "benign", tmp_path / "dist")
    code, out = _run(base, capsys)
    assert code == 0 and "VERIFIED: every link checked above holds" in out, out
    for link in (LINK_IDENTITY, LINK_BUILTIN, LINK_CONFIG, LINK_IMAGE, LINK_SBOM_FILES, LINK_SBOM_JAR):
        assert f"  - {link}\n" in out.split("Links not checked:")[0]
    assert "its purl and its 2 nested jars" in out
    assert "ENCLAVEHASH" in out.split("Links not checked:")[1]  # what no file can prove is said


def test_mrsigner_pinned(builds, tmp_path, capsys) -> None:
    base = _copy(builds, "benign", tmp_path / "dist")
    mrsigner = json.loads(Path(f"{base}.measurements.json").read_bytes())["mrsigner"]
    code, out = _run(base, capsys, "--mrsigner", mrsigner)
    assert code == 0 and "WARN  MRSIGNER is not pinned" not in out and f"MRSIGNER {mrsigner} is the one given" in out
    code, out = _run(base, capsys, "--mrsigner", "ab" * 32)
    assert code == 1 and "the signer you trust (--mrsigner)" in out.split("NOT VERIFIED")[1], out


def test_forgery_a_sbom_jar_forged_and_a_file_dropped(builds, tmp_path, capsys) -> None:
    """The package untouched; in the SBOM the jar's hash and purl forged, one file dropped, and the
    one cross-file digest recomputed with the backend's own function."""
    base = _copy(builds, "benign", tmp_path / "dist")

    def forge(sbom: dict) -> None:
        jar = next(c for c in sbom["components"] if c["bom-ref"] == "jar")
        jar["hashes"][0]["content"] = "9" * 64
        jar["purl"] = "pkg:maven/com.example/svc@0.9.0"
        sbom["components"] = [c for c in sbom["components"] if c.get("name") != "/lib/libz.so.1"]

    _edit(Path(f"{base}.cdx.json"), forge)
    sbom = json.loads(Path(f"{base}.cdx.json").read_bytes())
    _edit(Path(f"{base}.measurements.json"), lambda d: d.update(sbom_components_sha256=components_sha256(sbom)))
    code, out = _run(base, capsys)
    assert code == 1, out
    assert "/lib/libz.so.1 is in the image but not in the SBOM" in out
    # The dropped file and the forged hash fail the files link; the forged hash and purl, the jar link.
    assert f"NOT VERIFIED: 2 check(s) failed, in: {LINK_SBOM_FILES}; {LINK_SBOM_JAR}." in out


def test_forgery_a_nested_jar_identity_forged(builds, tmp_path, capsys) -> None:
    base = _copy(builds, "benign", tmp_path / "dist")

    def forge(sbom: dict) -> None:
        jar = next(c for c in sbom["components"] if c["bom-ref"] == "jar")
        jar["components"][0]["purl"] = "pkg:maven/com.fasterxml.jackson.core/jackson-core@2.15.0"
        jar["components"][0]["version"] = "2.15.0"

    _edit(Path(f"{base}.cdx.json"), forge)
    sbom = json.loads(Path(f"{base}.cdx.json").read_bytes())
    _edit(Path(f"{base}.measurements.json"), lambda d: d.update(sbom_components_sha256=components_sha256(sbom)))
    code, out = _run(base, capsys)
    assert code == 1 and "nested jar BOOT-INF/lib/jackson-core-2.13.5.jar: the SBOM's purl, version differ" in out, out
    assert f"in: {LINK_SBOM_JAR}." in out


def test_forgery_b_an_evil_rebuild_with_the_benign_component_list(builds, tmp_path, capsys) -> None:
    base = _copy(builds, "evil", tmp_path / "dist")
    benign = json.loads((builds["benign"] / f"{NAME}.cdx.json").read_bytes())
    _edit(Path(f"{base}.cdx.json"), lambda d: d.update(components=benign["components"]))
    _edit(Path(f"{base}.measurements.json"), lambda d: d.update(sbom_components_sha256=components_sha256(benign)))
    code, out = _run(base, capsys)
    assert code == 1, out
    assert "/usr/lib/spring/svc.jar: the image holds a file" in out
    assert f"in: {LINK_SBOM_FILES}; {LINK_SBOM_JAR}." in out or f"in: {LINK_SBOM_FILES}." in out


def test_forgery_c_an_arbitrary_mrenclave_in_every_record(builds, tmp_path, capsys) -> None:
    base = _copy(builds, "benign", tmp_path / "dist")
    forged = "c0ffee" + "0" * 58
    _edit(Path(f"{base}.measurements.json"), lambda d: d.update(mrenclave=forged))
    _edit(Path(f"{base}.ra_config.json"), lambda d: d["sgx_mrs"][0].update(mr_enclave=forged))
    _edit(
        Path(f"{base}.cdx.json"),
        lambda d: [
            p.update(value=forged) for p in d["metadata"]["component"]["properties"] if p["name"] == "occlum:mrenclave"
        ],
    )
    code, out = _run(base, capsys)
    assert code == 1 and "MRENCLAVE differs: the SIGSTRUCT says" in out, out
    assert f"in: {LINK_IDENTITY}." in out


def test_forgery_d_a_changed_image_file_in_the_package(builds, tmp_path, capsys) -> None:
    """One byte of an image file changed inside the package, the package's sha256 re-recorded."""
    base = _copy(builds, "benign", tmp_path / "dist")
    package = Path(f"{base}.tar.gz")
    member = _image_file(package, "/bin/java")
    data = bytearray(_member(package, member))
    data[95 + 320] ^= 1  # the first data byte, inside node 0's authenticated part
    _rewrite(package, {member: bytes(data)})
    _rerecord_package_sha256(base)
    code, out = _run(base, capsys)
    assert code == 1 and "the MAC of its metadata node is wrong" in out, out
    assert f"in: {LINK_IMAGE}." in out


def test_forgery_d_a_validly_reprotected_image_file(builds, tmp_path, capsys) -> None:
    """The forger writes a well-formed protected file with other content: its own MAC is right, but
    the image's metadata records another."""
    base = _copy(builds, "benign", tmp_path / "dist")
    package = Path(f"{base}.tar.gz")
    member = _image_file(package, "/bin/java")
    forged, _mac = protected_file(b"#!/bin/sh\necho owned\n", member.rsplit("/", 1)[1])
    _rewrite(package, {member: forged})
    _rerecord_package_sha256(base)
    code, out = _run(base, capsys)
    assert code == 1 and "is not the one its inode records" in out, out
    assert f"in: {LINK_IMAGE}." in out


def test_forgery_d_the_config_file_replaced(builds, tmp_path, capsys) -> None:
    """A well-formed .Occlum_sys.json.protected with other content: the enclave's built-in MAC differs."""
    base = _copy(builds, "benign", tmp_path / "dist")
    package = Path(f"{base}.tar.gz")
    forged, _mac = protected_file(b'{"app": []}', ".Occlum_sys.json.protected")
    _rewrite(package, {"build/.Occlum_sys.json.protected": forged})
    _rerecord_package_sha256(base)
    code, out = _run(base, capsys)
    assert code == 1 and "but the signed enclave's .builtin_config says" in out, out
    assert f"in: {LINK_BUILTIN}." in out


def test_a_sigstruct_edited_to_another_mrenclave_no_longer_verifies(builds, tmp_path, capsys) -> None:
    base = _copy(builds, "benign", tmp_path / "dist")
    package = Path(f"{base}.tar.gz")
    signed = _member(package, "build/lib/libocclum-libos.signed.so")

    at = metadata_offset(signed) + 64 + 960  # the SIGSTRUCT's ENCLAVEHASH
    tampered = signed[:at] + bytes(32) + signed[at + 32 :]
    _rewrite(package, {"build/lib/libocclum-libos.signed.so": tampered})
    _rerecord_package_sha256(base)
    code, out = _run(base, capsys)
    assert code == 1 and "its SIGSTRUCT signature does not verify" in out, out


def _enclave_property(name: str, value: str) -> Callable[[dict], object]:
    return lambda d: [p.update(value=value) for p in d["metadata"]["component"]["properties"] if p["name"] == name]


RECORD_EDITS = {
    "ra-config-mrenclave": (
        "ra_config",
        lambda d: d["sgx_mrs"][0].update(mr_enclave="9" * 64),
        "MRENCLAVE differs",
    ),
    "sbom-mrsigner": ("cdx", _enclave_property("occlum:mrsigner", "9" * 64), "MRSIGNER differs"),
    "measurements-isvsvn": ("measurements", lambda d: d.update(version_number=4), "ISVSVN (version_number) differs"),
    "ra-config-debuggable": ("ra_config", lambda d: d["sgx_mrs"][0].update(debuggable=True), "debuggable differs"),
    "ra-config-two-enclaves": (
        "ra_config",
        lambda d: d["sgx_mrs"].append(dict(d["sgx_mrs"][0])),
        "`sgx_mrs` must hold exactly one enclave",
    ),
    "sbom-jdk-hash": (
        "cdx",
        lambda d: next(c for c in d["components"] if c["bom-ref"] == "jdk")["hashes"][0].update(content="9" * 64),
        "JDK archive sha256 differs",
    ),
    "measurements-release": ("measurements", lambda d: d.update(occlum_release="0.30.1"), "Occlum release differs"),
    "stage-only-sbom": ("cdx", _enclave_property("occlum:measured", "false"), "says the image was not measured"),
    "measurements-package-sha256": (
        "measurements",
        lambda d: d.update(package_sha256="9" * 64),
        "package sha256 differs",
    ),
}


@pytest.mark.parametrize("kind", sorted(RECORD_EDITS))
def test_a_record_that_disagrees_is_named(builds, tmp_path, capsys, kind: str) -> None:
    base = _copy(builds, "benign", tmp_path / "dist")
    record, change, words = RECORD_EDITS[kind]
    _edit(Path(f"{base}.{record}.json"), change)
    code, out = _run(base, capsys)
    assert code == 1 and words in out and "NOT VERIFIED" in out, out


def test_a_missing_ra_config_is_named(builds, tmp_path, capsys) -> None:
    base = _copy(builds, "benign", tmp_path / "dist")
    Path(f"{base}.ra_config.json").unlink()
    code, out = _run(base, capsys)
    assert code == 1 and "enclave.ra_config.json is missing (Occlum 0.31.0 has the ra_config format)" in out, out


def test_another_build_s_package_beside_these_records(builds, tmp_path, capsys) -> None:
    base = _copy(builds, "benign", tmp_path / "dist")
    shutil.copyfile(builds["evil"] / f"{NAME}.tar.gz", f"{base}.tar.gz")
    code, out = _run(base, capsys)
    assert code == 1 and "MRENCLAVE differs: the SIGSTRUCT says" in out and "package sha256 differs" in out, out


def test_a_debuggable_enclave_passes_with_a_loud_warning(builds, tmp_path, capsys) -> None:
    base = _copy(builds, "debuggable", tmp_path / "dist")
    code, out = _run(base, capsys)
    assert code == 0, out
    assert "ok    debuggable true: the SIGSTRUCT" in out and "WARN  the enclave is DEBUGGABLE" in out


def test_the_unauthenticated_encrypted_mark_does_not_skip_the_image(builds, tmp_path, capsys) -> None:
    """Node 0's plain part is outside every MAC: clearing its integrity-only byte must not turn the
    image into an 'encrypted, not checked' one, since the checked initfs says it is integrity-only."""
    base = _copy(builds, "benign", tmp_path / "dist")
    package = Path(f"{base}.tar.gz")
    metadata = bytearray(_member(package, f"{IMAGE_ROOT}/metadata"))
    metadata[94] = 0
    _rewrite(package, {f"{IMAGE_ROOT}/metadata": bytes(metadata)})
    _rerecord_package_sha256(base)
    code, out = _run(base, capsys)
    assert code == 1 and "the mark is in the file's unauthenticated header" in out, out
    assert f"in: {LINK_IMAGE}." in out


def test_files_in_the_root_s_writable_layer_are_refused(builds, tmp_path, capsys) -> None:
    base = _copy(builds, "benign", tmp_path / "dist")
    package = Path(f"{base}.tar.gz")
    members = _members(package)
    with tarfile.open(package, "w:gz") as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isfile() else None)
        extra = tarfile.TarInfo("enclave/run/mount/__ROOT/metadata")
        extra.size = 4
        tf.addfile(extra, io.BytesIO(b"evil"))
    _rerecord_package_sha256(base)
    code, out = _run(base, capsys)
    assert code == 1 and "ships files in the root's writable layer" in out, out


def test_a_mount_over_the_image_s_files_is_refused_and_host_variables_named(builds, tmp_path, capsys) -> None:
    base = _copy(builds, "hostfs", tmp_path / "dist")
    code, out = _run(base, capsys)
    assert code == 1, out
    assert "mounts a hostfs at /usr/lib/spring, over 1 file(s) of the image (e.g. /usr/lib/spring/svc.jar)" in out
    assert (
        "WARN  the host sets these variables at run time (env.untrusted): JAVA_TOOL_OPTIONS; JAVA_TOOL_OPTIONS" in out
    )
    assert f"in: {LINK_CONFIG}." in out


def test_another_signer_s_package_is_not_read_further(builds, tmp_path, capsys) -> None:
    base = _copy(builds, "evil", tmp_path / "dist")
    benign = json.loads((builds["benign"] / f"{NAME}.measurements.json").read_bytes())["mrsigner"]
    code, out = _run(base, capsys, "--mrsigner", benign)
    assert code == 1 and "Occlum's chain and the SBOM: the enclave is not signed by the signer given" in out, out
