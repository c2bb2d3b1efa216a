"""Check an enclave package against what its signed enclave proves, and its records against both.

    python -m occlum.attestation.verify dist/svc/enclave.tar.gz [--mrsigner HEX]
    python3 occlum-validate.pex verify-package dist/svc/enclave.tar.gz [--mrsigner HEX]

Reads `<name>.tar.gz` and, beside it, `<name>.measurements.json`, `<name>.ra_config.json` (for
Occlum releases that have the format) and `<name>.cdx.json`. The records are unsigned: anyone can
write them. So every value that matters is taken from what is signed or recomputed from the bytes,
link by link, and the records must agree with it:

* the SIGSTRUCT in the signed enclave (`build/lib/libocclum-libos.signed.so`): its RSA-3072
  signature is checked, and MRENCLAVE, MRSIGNER, ISVPRODID, ISVSVN and the DEBUG attribute are read
  from it (occlum.attestation.sigstruct);
* Occlum's chain from that enclave down to the image's files, as far as the package holds it
  (occlum.attestation.occlum_chain), and from those files to the SBOM.

Each link is printed as checked or not checked. VERIFIED means every checked link held; a link
that is not checked is named with what would check it. Without `--mrsigner`, anyone with a key of
their own can build a package whose links all hold: pin the signer you trust.

Exit 0: verified; 1: a link failed; 2: a file is missing, not a regular file, too large, or not in
the shape `pants package` writes (the message names the file and the JSON path). Stdlib only; every
read is bounded while reading (occlum.attestation.untrusted, occlum.attestation.package_reader).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Optional

from occlum.attestation.occlum_chain import check_chain, component_property, component_sha256, first_scan_readers
from occlum.attestation.package_reader import PackageContents, read_bytes, read_package
from occlum.attestation.ra_config import VERIFY_KEYS
from occlum.attestation.sbom import JDK_REF, components_sha256
from occlum.attestation.sigstruct import Sigstruct, SigstructError, read_sigstruct
from occlum.attestation.untrusted import Doc, Unusable, open_regular, parse_json, read_json
from occlum.config.releases import UnknownReleaseError, has_ra_config

EXIT_OK, EXIT_MISMATCH, EXIT_UNUSABLE = 0, 1, 2
MAX_RECORD_BYTES = 1024 * 1024  # measurements and ra_config: a few KB
MAX_SBOM_BYTES = 256 * 1024 * 1024  # one component per image file: a large image's SBOM is tens of MB
MAX_CONFIG_BYTES = 1024 * 1024
MAX_SIGNED_ENCLAVE_BYTES = 512 * 1024 * 1024  # Occlum's signed LibOS is tens of MB
SIGNED_ENCLAVE = "build/lib/libocclum-libos.signed.so"
_HEX64 = re.compile(r"[0-9a-f]{64}")

# The one link no file in a package can prove: what EINIT measures.
NOT_CHECKED_MEASUREMENT = (
    "the signed enclave's pages -> its SIGSTRUCT's ENCLAVEHASH: that needs the ECREATE/EADD/EEXTEND "
    "measurement of the ELF that `sgx_sign` computes; at run time EINIT refuses an enclave whose pages "
    "do not measure to it"
)


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failures: int = 0
    warnings: int = 0
    checked: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=list)
    failed_links: list[str] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append(f"  ok    {text}")

    def fail(self, text: str, link: str = "") -> None:
        self.failures += 1
        self.lines.append(f"  FAIL  {text}")
        if link and link not in self.failed_links:
            self.failed_links.append(link)

    def warn(self, text: str) -> None:
        self.warnings += 1
        self.lines.append(f"  WARN  {text}")

    def link(self, name: str) -> None:
        if name not in self.checked:
            self.checked.append(name)

    def agree(self, what: str, values: dict[str, Any], link: str = "") -> None:
        """One check: every source names the same value (None: that source does not say)."""
        values = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in values.items()}
        said = {k: v for k, v in values.items() if v is not None}
        missing = [k for k, v in values.items() if v is None]
        if len(set(map(str, said.values()))) == 1 and not missing:
            self.ok(f"{what} {next(iter(said.values()))}: {', '.join(values)} agree")
        else:
            shown = "; ".join(f"{k} says {v if v is not None else 'nothing'}" for k, v in values.items())
            self.fail(f"{what} differs: {shown}", link)


def _sbom_property(sbom: Doc, name: str) -> Optional[str]:
    """A property of the SBOM's enclave component (`occlum:<name>`)."""
    return component_property(sbom.get("metadata").get("component"), name)


def _jdk_sha256(sbom: Doc) -> Optional[str]:
    jdk = next((c for c in sbom.get("components").items() if c.get("bom-ref").text() == JDK_REF), None)
    return component_sha256(jdk) if jdk is not None else None


@dataclass(frozen=True)
class Records:
    meas: Doc
    sbom: Doc
    ra: Optional[Doc]
    names: dict[str, str]


def _read_records(base: str) -> Records:
    meas_path, sbom_path, ra_path = (f"{base}.measurements.json", f"{base}.cdx.json", f"{base}.ra_config.json")
    meas = Doc(os.path.basename(meas_path), read_json(meas_path, MAX_RECORD_BYTES))
    sbom = Doc(os.path.basename(sbom_path), read_json(sbom_path, MAX_SBOM_BYTES))
    ra = Doc(os.path.basename(ra_path), read_json(ra_path, MAX_RECORD_BYTES)) if os.path.lexists(ra_path) else None
    for doc in (meas, sbom, ra):
        if doc is not None:
            doc.obj()
    names = {"measurements": meas.name, "sbom": sbom.name, "ra_config": os.path.basename(ra_path)}
    return Records(meas, sbom, ra, names)


def _first_scan_readers(rest: str) -> Optional[Callable[[IO[bytes]], Any]]:
    if rest == SIGNED_ENCLAVE:
        return read_bytes(MAX_SIGNED_ENCLAVE_BYTES)
    if rest == "Occlum.json":
        return read_bytes(MAX_CONFIG_BYTES)
    return first_scan_readers(rest)


def _check_sigstruct(report: Report, contents: PackageContents, rec: Records) -> Optional[Sigstruct]:
    link = "the signed enclave -> its SIGSTRUCT (RSA-3072 signature)"
    data = contents.read.get(SIGNED_ENCLAVE)
    if data is None:
        report.fail(f"the package has no {SIGNED_ENCLAVE}, the signed enclave", link)
        return None
    try:
        sig = read_sigstruct(data)
    except SigstructError as e:
        report.fail(f"{SIGNED_ENCLAVE}: {e}", link)
        return None
    report.link(link)
    report.ok(f"{SIGNED_ENCLAVE}: SIGSTRUCT signature verified with its RSA-3072 key (MRSIGNER {sig.mrsigner})")
    for version, mrenclave in sig.other_records:
        if mrenclave != sig.mrenclave:
            report.warn(
                f"{SIGNED_ENCLAVE} has a second metadata record (version {version}, same signer) with MRENCLAVE "
                f"{mrenclave}: a platform that loads that record reports that MRENCLAVE"
            )
    return sig


def _check_identity(report: Report, sig: Optional[Sigstruct], contents: PackageContents, rec: Records) -> None:
    """MRENCLAVE, MRSIGNER, ISVPRODID, ISVSVN, DEBUG: the SIGSTRUCT's, and every record's the same."""
    link = "the SIGSTRUCT -> the records (measurements, ra_config, SBOM)"
    meas, sbom, ra, names = rec.meas, rec.sbom, rec.ra, rec.names
    entry: Optional[Doc] = None
    if ra is not None:
        mrs = ra.get("sgx_mrs").items()
        if len(mrs) != 1:
            report.fail(f"{names['ra_config']}: `sgx_mrs` must hold exactly one enclave, this build", link)
        else:
            entry = mrs[0]
            entry.obj()
    else:
        release = meas.get("occlum_release").text() or ""
        try:
            expected = has_ra_config(release)
        except UnknownReleaseError:
            expected = True  # a release this checker does not know: assume the newest format
        if expected:
            report.fail(f"{names['ra_config']} is missing (Occlum {release} has the ra_config format)", link)
        else:
            report.ok(f"no {names['ra_config']}: Occlum {release} predates the ra_config format")

    def sources(signed: Any, meas_value: Any, ra_key: str, sbom_key: str) -> dict[str, Any]:
        out: dict[str, Any] = {"the SIGSTRUCT": signed} if sig is not None else {}
        out[names["measurements"]] = meas_value
        if ra is not None:
            out[names["ra_config"]] = entry.get(ra_key).value if entry is not None else None
        out[names["sbom"]] = _sbom_property(sbom, sbom_key)
        return out

    s = sig
    report.agree("MRENCLAVE", sources(s and s.mrenclave, meas.get("mrenclave").text(), "mr_enclave", "mrenclave"), link)
    report.agree("MRSIGNER", sources(s and s.mrsigner, meas.get("mrsigner").text(), "mr_signer", "mrsigner"), link)
    report.agree(
        "ISVPRODID (product_id)",
        sources(s and s.isv_prod_id, meas.get("product_id").integer(), "isv_prod_id", "isv_prod_id"),
        link,
    )
    report.agree(
        "ISVSVN (version_number)",
        sources(s and s.isv_svn, meas.get("version_number").integer(), "isv_svn", "isv_svn"),
        link,
    )
    debug = sources(s and s.debuggable, meas.get("debuggable").boolean(), "debuggable", "debuggable")
    report.agree("debuggable", {k: (str(v).lower() if v is not None else None) for k, v in debug.items()}, link)
    if sig is not None:
        report.link(link)

    # `occlum run` reads the package's Occlum.json to decide whether it runs a release enclave.
    config_link = "the SIGSTRUCT -> the package's Occlum.json"
    raw = contents.read.get("Occlum.json")
    metadata = Doc("the package's Occlum.json", parse_json(raw, "the package's Occlum.json") if raw else None).get(
        "metadata"
    )
    # Against the SIGSTRUCT; without one (already a failure), against the measurements.
    reference = "the SIGSTRUCT" if s else names["measurements"]
    for key, signed in (
        ("debuggable", s and s.debuggable),
        ("product_id", s and s.isv_prod_id),
        ("version_number", s and s.isv_svn),
    ):
        expected = signed if s else meas.get(key).value
        report.agree(
            f"Occlum.json metadata.{key}",
            {reference: expected, "the package's Occlum.json": metadata.get(key).value},
            config_link,
        )
    if sig is not None:
        report.link(config_link)


def _check_records_and_package(report: Report, package: str, contents: PackageContents, rec: Records) -> None:
    link = "the package's bytes -> the records"
    meas, sbom, names = rec.meas, rec.sbom, rec.names
    report.agree(
        "package sha256",
        {
            f"{os.path.basename(package)} itself": contents.sha256,
            names["measurements"]: meas.get("package_sha256").text(),
            names["sbom"]: _sbom_property(sbom, "package_sha256"),
        },
        link,
    )
    member = contents.members.get(SIGNED_ENCLAVE)
    report.agree(
        f"signed enclave ({SIGNED_ENCLAVE}) sha256",
        {
            "the package": member.sha256 if member else None,
            names["measurements"]: meas.get("signed_enclave_sha256").text(),
            names["sbom"]: _sbom_property(sbom, "signed_enclave_sha256"),
        },
        link,
    )
    report.link(link)
    # The records' own consistency: a convenience for humans, not a link to anything signed.
    report.agree(
        "SBOM components sha256",
        {
            names["measurements"]: meas.get("sbom_components_sha256").text(),
            f"{names['sbom']} components": components_sha256(sbom.obj()),
        },
        "the records agree with each other",
    )
    image = meas.get("image")
    jdk = image.get("jdk") if image.value is not None else Doc(meas.name, None)
    report.agree(
        "JDK archive sha256",
        {
            names["measurements"]: jdk.get("sha256").text() if jdk.value is not None else None,
            names["sbom"]: _jdk_sha256(sbom),
        },
        "the records agree with each other",
    )
    report.agree(
        "Occlum release",
        {names["measurements"]: meas.get("occlum_release").text(), names["sbom"]: _sbom_property(sbom, "release")},
        "the records agree with each other",
    )


def _warnings(report: Report, sig: Optional[Sigstruct], rec: Records, expected_mrsigner: Optional[str]) -> None:
    ra, meas, sbom, names = rec.ra, rec.meas, rec.sbom, rec.names
    if ra is not None:
        off = [k for k in VERIFY_KEYS if ra.get(k).value != "on"]
        if off:
            report.warn(f"{names['ra_config']} switches off: {', '.join(off)}; those are not checked at attestation")
    if sig.debuggable if sig else meas.get("debuggable").value is True:
        report.warn("the enclave is DEBUGGABLE: not confidential; a production verifier must refuse it")
    mode = meas.get("sgx_mode").text()
    if mode not in (None, "HW"):
        report.warn(f"the enclave was built for {mode} (simulation): it cannot be attested")
    if _sbom_property(sbom, "measured") != "true":
        report.fail(f"{names['sbom']} says the image was not measured (a stage-only SBOM)", "the records")
    link = "the SIGSTRUCT's MRSIGNER -> the signer you trust (--mrsigner)"
    if expected_mrsigner is None:
        report.warn("MRSIGNER is not pinned: any key can sign a package whose links all hold; pass --mrsigner <hex>")
        report.not_checked.append(f"{link}: no --mrsigner given")
    elif sig is not None:
        report.link(link)
        if sig.mrsigner == expected_mrsigner:
            report.ok(f"MRSIGNER {sig.mrsigner} is the one given with --mrsigner")
        else:
            report.fail(f"MRSIGNER is {sig.mrsigner}, not {expected_mrsigner} given with --mrsigner", link)


def verify(package: str, expected_mrsigner: Optional[str] = None) -> Report:
    if not package.endswith(".tar.gz"):
        raise Unusable(f"{package} is not a `.tar.gz` package; pass the `<name>.tar.gz` that `pants package` wrote")
    os.close(open_regular(package, "the package"))
    base = package[: -len(".tar.gz")]
    rec = _read_records(base)
    report = Report()
    contents = read_package(package, _first_scan_readers)
    sig = _check_sigstruct(report, contents, rec)
    _check_identity(report, sig, contents, rec)
    if sig is not None and expected_mrsigner is not None and sig.mrsigner != expected_mrsigner:
        # Another signer's package: nothing below is worth reading (nor the time a huge image costs).
        report.not_checked.append("Occlum's chain and the SBOM: the enclave is not signed by the signer given")
    else:
        check_chain(report, package, contents, rec.sbom, contents.read.get(SIGNED_ENCLAVE) if sig else None)
    _check_records_and_package(report, package, contents, rec)
    _warnings(report, sig, rec, expected_mrsigner)
    report.not_checked.append(NOT_CHECKED_MEASUREMENT)
    return report


def _hex64(text: str) -> str:
    value = text.strip().lower()
    if not _HEX64.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not 64 hex digits (an MRSIGNER, as `occlum print mrsigner` shows it)"
        )
    return value


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="verify-package", description=__doc__.splitlines()[0])
    p.add_argument("package", help="the `<name>.tar.gz` written by `pants package`")
    p.add_argument(
        "--mrsigner",
        type=_hex64,
        help="the MRSIGNER of the key you trust to sign this service (64 hex digits); without it, a package "
        "signed by anyone's key can pass",
    )
    args = p.parse_args(argv)
    for stream in (sys.stdout, sys.stderr):  # names from a package may hold bytes that are not text
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        report = verify(args.package, args.mrsigner)
    except Unusable as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"Checking {args.package} against its signed enclave, its image and its records:")
    print("\n".join(report.lines))
    print("Links checked:")
    print("".join(f"  - {link}\n" for link in report.checked), end="")
    print("Links not checked:")
    print("".join(f"  - {link}\n" for link in report.not_checked), end="")
    if report.failures:
        print(f"NOT VERIFIED: {report.failures} check(s) failed, in: {'; '.join(report.failed_links)}.")
        return EXIT_MISMATCH
    warned = f", with {report.warnings} warning(s)" if report.warnings else ""
    print(f"VERIFIED: every link checked above holds{warned}.")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
