"""From a staged instance to a signed, measured Occlum package: what `package` and
`check-reproducible` share once the toolchain is there."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pants.engine.fs import Digest, DigestEntries, FileEntry
from pants.engine.rules import collect_rules, rule
from pants.util.logging import LogLevel

from occlum.pants_compat import concurrently, get_digest_entries, rule_call
from occlum.records import EnclaveMeasurementsV1
from occlum.subsystems.occlum import OcclumSubsystem
from occlum.util_rules.enclave import EnclaveBuildRequest, get_built_enclave
from occlum.util_rules.occlum_steps import (
    OcclumMeasurements,
    OcclumStepError,
    get_measurements,
)
from occlum.util_rules.staged_instance import OcclumJavaImageFieldSet, get_staged_instance


@dataclass(frozen=True)
class EnclavePackageRequest:
    field_set: OcclumJavaImageFieldSet
    nonce: str = ""  # non-empty: run every toolchain step again instead of using the cache
    goal: str = "package"  # the goal asking (package, check-reproducible)


@dataclass(frozen=True)
class EnclavePackage:
    name: str
    tarball: Digest  # <name>.tar.gz at the root; its bytes depend only on its contents
    measurements: OcclumMeasurements
    record: EnclaveMeasurementsV1
    image: Digest  # occlum_instance/image/ as `occlum build` measured it (skeleton + staged)


@rule(desc="Building, signing and packaging an enclave", level=LogLevel.DEBUG)
async def build_enclave_package(request: EnclavePackageRequest, occlum: OcclumSubsystem) -> EnclavePackage:
    field_set = request.field_set
    staged = await get_staged_instance(field_set)
    debuggable = staged.summary.debuggable
    name = os.path.basename(field_set.output_path.checked_value())
    build = EnclaveBuildRequest(field_set.address, staged.digest, debuggable, request.nonce, request.goal, name)
    built = await get_built_enclave(build)
    assert built.package is not None  # asked for with package_name
    # Pants' file digests are sha256: the hashes that bind the records to the package's bytes. With
    # a package, the built instance's digest holds only the signed enclave (occlum_steps.SIGNED).
    measurements, package_entries, signed_entries = await concurrently(
        get_measurements(built), get_digest_entries(built.package), get_digest_entries(built.digest)
    )
    record = EnclaveMeasurementsV1(
        target=str(field_set.address),
        mrenclave=measurements.mrenclave,
        mrsigner=measurements.mrsigner,
        occlum_release=built.toolchain.release,
        occlum_toolchain_fingerprint=built.toolchain.fingerprint,
        sgx_mode=occlum.sgx_mode.value,
        debuggable=debuggable,
        product_id=field_set.product_id.value,
        version_number=field_set.version_number.value,
        package=f"{name}.tar.gz",
        image=staged.summary,
        package_sha256=_only_file(package_entries).file_digest.fingerprint,
        signed_enclave_sha256=_only_file(signed_entries).file_digest.fingerprint,
    )
    return EnclavePackage(name, built.package, measurements, record, built.image)


def _only_file(entries: DigestEntries) -> FileEntry:
    files = [e for e in entries if isinstance(e, FileEntry)]
    if len(files) != 1:
        raise OcclumStepError(f"expected one file, found {[e.path for e in entries]}")
    return files[0]


get_enclave_package = rule_call(build_enclave_package)


def rules():
    return collect_rules()
