"""Check that an enclave package, its measurements, its ra_config and its SBOM belong together.

    python -m occlum.attestation.verify dist/svc/enclave.tar.gz
    python3 occlum-validate.pex verify-package dist/svc/enclave.tar.gz

Reads `<name>.tar.gz` and, beside it, `<name>.measurements.json`, `<name>.ra_config.json` (for
Occlum releases that have the format) and `<name>.cdx.json`, and checks, without SGX or Occlum:

* the package's sha256 is the one the measurements and the SBOM record;
* the signed enclave inside the package (`build/lib/libocclum-libos.signed.so`) has the sha256 the
  measurements and the SBOM record, so the enclave that was measured is the one shipped;
* the `Occlum.json` inside the package has the measurements' debuggable, product_id and
  version_number (`occlum run` reads it);
* MRENCLAVE, MRSIGNER, ISVPRODID, ISVSVN and debuggable agree across measurements, ra_config and SBOM.

It prints one line per check and exits 0 when all agree, 1 when something does not, 2 when a file is
missing or unreadable. A debuggable or simulation enclave, or a ra_config with a check switched
off, is reported as a warning. Stdlib only; every read is bounded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Optional

from occlum.attestation.ra_config import VERIFY_KEYS
from occlum.attestation.sbom import JDK_REF, components_sha256, enclave_property
from occlum.config.releases import UnknownReleaseError, has_ra_config

EXIT_OK, EXIT_MISMATCH, EXIT_UNUSABLE = 0, 1, 2
MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 1_000_000
MAX_CONFIG_BYTES = 1024 * 1024
SIGNED_ENCLAVE = "build/lib/libocclum-libos.signed.so"


class Unusable(Exception):
    pass


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failures: int = 0
    warnings: int = 0

    def ok(self, text: str) -> None:
        self.lines.append(f"  ok    {text}")

    def fail(self, text: str) -> None:
        self.failures += 1
        self.lines.append(f"  FAIL  {text}")

    def warn(self, text: str) -> None:
        self.warnings += 1
        self.lines.append(f"  WARN  {text}")

    def agree(self, what: str, values: dict[str, Any]) -> None:
        """One check: every source names the same value (None: that source does not say)."""
        said = {k: v for k, v in values.items() if v is not None}
        missing = [k for k, v in values.items() if v is None]
        if len(set(map(str, said.values()))) == 1 and not missing:
            self.ok(f"{what} {next(iter(said.values()))}: {', '.join(values)} agree")
        else:
            shown = "; ".join(f"{k} says {v if v is not None else 'nothing'}" for k, v in values.items())
            self.fail(f"{what} differs: {shown}")


def _json(path: str) -> Any:
    try:
        size = os.path.getsize(path)
        if size > MAX_JSON_BYTES:
            raise Unusable(f"{path} is {size} bytes, more than the {MAX_JSON_BYTES} a record may be")
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        raise Unusable(f"{path} is missing; the package's records are written beside it by `pants package`") from None
    except (OSError, ValueError) as e:
        raise Unusable(f"cannot read {path}: {e}") from None


def _stream_sha256(f: Optional[IO[bytes]]) -> str:
    h = hashlib.sha256()
    while f is not None and (chunk := f.read(1 << 20)):
        h.update(chunk)
    return h.hexdigest()


def _file_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return _stream_sha256(f)


@dataclass(frozen=True)
class PackageContents:
    signed_enclave_sha256: Optional[str]
    occlum_json: Optional[dict[str, Any]]


def read_package(path: str) -> PackageContents:
    """The signed enclave's sha256 and the user Occlum.json, streamed out of the tarball."""
    signed, config = None, None
    try:
        with tarfile.open(path, mode="r|gz") as tf:
            for count, member in enumerate(tf, start=1):
                if count > MAX_MEMBERS:
                    raise Unusable(f"{path} has more than {MAX_MEMBERS} members; it is not an Occlum package")
                top, _, rest = member.name.partition("/")
                if not member.isfile() or "/" in top:
                    continue
                if rest == SIGNED_ENCLAVE:
                    signed = _stream_sha256(tf.extractfile(member))
                elif rest == "Occlum.json" and member.size <= MAX_CONFIG_BYTES:
                    f = tf.extractfile(member)
                    assert f is not None
                    config = json.loads(f.read())
    except (OSError, tarfile.TarError, EOFError, ValueError) as e:
        raise Unusable(f"cannot read {path} as a .tar.gz: {e}") from None
    return PackageContents(signed, config if isinstance(config, dict) else None)


def _jdk_sha256(sbom: dict[str, Any]) -> Optional[str]:
    """The SHA-256 of the SBOM's JDK component (bom-ref `jdk`)."""
    for c in sbom.get("components", []):
        if isinstance(c, dict) and c.get("bom-ref") == JDK_REF:
            for h in c.get("hashes", []):
                if isinstance(h, dict) and h.get("alg") == "SHA-256":
                    return h.get("content")
    return None


def verify(package: str) -> Report:
    if not package.endswith(".tar.gz"):
        raise Unusable(f"{package} is not a `.tar.gz` package; pass the `<name>.tar.gz` that `pants package` wrote")
    base = package[: -len(".tar.gz")]
    if not os.path.isfile(package):
        raise Unusable(f"{package} is missing")
    meas = _json(f"{base}.measurements.json")
    sbom = _json(f"{base}.cdx.json")
    ra_path = f"{base}.ra_config.json"
    ra = _json(ra_path) if os.path.exists(ra_path) else None
    if not isinstance(meas, dict) or not isinstance(sbom, dict):
        raise Unusable(f"{base}.measurements.json and {base}.cdx.json must each hold a JSON object")
    names = {
        "measurements": os.path.basename(f"{base}.measurements.json"),
        "ra_config": os.path.basename(ra_path),
        "sbom": os.path.basename(f"{base}.cdx.json"),
    }
    report = Report()
    contents = read_package(package)

    # 1. The bytes: the package, and the enclave inside it.
    report.agree(
        "package sha256",
        {
            f"{os.path.basename(package)} itself": _file_sha256(package),
            names["measurements"]: meas.get("package_sha256"),
            names["sbom"]: enclave_property(sbom, "package_sha256"),
        },
    )
    report.agree(
        f"signed enclave ({SIGNED_ENCLAVE}) sha256",
        {
            "the package": contents.signed_enclave_sha256,
            names["measurements"]: meas.get("signed_enclave_sha256"),
            names["sbom"]: enclave_property(sbom, "signed_enclave_sha256"),
        },
    )
    metadata = (contents.occlum_json or {}).get("metadata", {}) if contents.occlum_json else {}
    for key, record_key in (
        ("debuggable", "debuggable"),
        ("product_id", "product_id"),
        ("version_number", "version_number"),
    ):
        report.agree(
            f"Occlum.json metadata.{key}",
            {"the package's Occlum.json": metadata.get(key), names["measurements"]: meas.get(record_key)},
        )

    # What the SBOM lists (JDK, jar, libraries, every image file with its sha256) is the build's.
    report.agree(
        "SBOM components sha256",
        {
            names["measurements"]: meas.get("sbom_components_sha256"),
            f"{names['sbom']} components": components_sha256(sbom),
        },
    )
    jdk = meas.get("image", {}).get("jdk", {}) if isinstance(meas.get("image"), dict) else {}
    report.agree("JDK archive sha256", {names["measurements"]: jdk.get("sha256"), names["sbom"]: _jdk_sha256(sbom)})
    report.agree(
        "Occlum release",
        {names["measurements"]: meas.get("occlum_release"), names["sbom"]: enclave_property(sbom, "release")},
    )

    # 2. The identity a quote is compared with.
    mrs = ra.get("sgx_mrs") if isinstance(ra, dict) else None
    entry = mrs[0] if isinstance(mrs, list) and len(mrs) == 1 and isinstance(mrs[0], dict) else {}
    if ra is None:
        release = str(meas.get("occlum_release", ""))
        try:
            expected = has_ra_config(release)
        except UnknownReleaseError:
            expected = True  # a release this checker does not know: assume the newest format
        if expected:
            report.fail(f"{names['ra_config']} is missing (Occlum {release} has the ra_config format)")
        else:
            report.ok(f"no {names['ra_config']}: Occlum {release} predates the ra_config format")
    elif not entry:
        report.fail(f"{names['ra_config']}: `sgx_mrs` must hold exactly one enclave, this build")

    def sources(meas_key: str, ra_key: str, sbom_key: str) -> dict[str, Any]:
        out = {names["measurements"]: meas.get(meas_key)}
        if ra is not None:
            out[names["ra_config"]] = entry.get(ra_key)
        out[names["sbom"]] = enclave_property(sbom, sbom_key)
        return out

    report.agree("MRENCLAVE", sources("mrenclave", "mr_enclave", "mrenclave"))
    report.agree("MRSIGNER", sources("mrsigner", "mr_signer", "mrsigner"))
    report.agree("ISVPRODID (product_id)", sources("product_id", "isv_prod_id", "isv_prod_id"))
    report.agree("ISVSVN (version_number)", sources("version_number", "isv_svn", "isv_svn"))
    debuggable = sources("debuggable", "debuggable", "debuggable")
    report.agree("debuggable", {k: (str(v).lower() if v is not None else None) for k, v in debuggable.items()})

    # 3. What a verifier should know before it trusts any of this.
    if isinstance(ra, dict):
        off = [k for k in VERIFY_KEYS if ra.get(k) != "on"]
        if off:
            report.warn(f"{names['ra_config']} switches off: {', '.join(off)}; those are not checked at attestation")
    if meas.get("debuggable") is True:
        report.warn("the enclave is DEBUGGABLE: not confidential; a production verifier must refuse it")
    if meas.get("sgx_mode") not in (None, "HW"):
        report.warn(f"the enclave was built for {meas.get('sgx_mode')} (simulation): it cannot be attested")
    if enclave_property(sbom, "measured") != "true":
        report.fail(f"{names['sbom']} says the image was not measured (a stage-only SBOM)")
    return report


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="verify-package", description=__doc__.splitlines()[0])
    p.add_argument("package", help="the `<name>.tar.gz` written by `pants package`")
    args = p.parse_args(argv)
    try:
        report = verify(args.package)
    except Unusable as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"Checking {args.package} against its measurements, ra_config and SBOM:")
    print("\n".join(report.lines))
    if report.failures:
        print(f"NOT VERIFIED: {report.failures} check(s) failed; these files do not belong together.")
        return EXIT_MISMATCH
    warned = f", with {report.warnings} warning(s)" if report.warnings else ""
    print(f"VERIFIED: the package, its measurements, ra_config and SBOM belong together{warned}.")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
