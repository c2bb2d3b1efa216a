"""`pants package` for `occlum_java_image`: the signed Occlum package, its measurements, the
verifier's ra_config and an SBOM bound to the measurement; or, with `[occlum].stage_only`, the
staged instance (`Occlum.json` + `image/`), a copy_bom file and an SBOM of the unmeasured image."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Optional

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    DigestEntries,
    FileContent,
    FileEntry,
    MergeDigests,
    SymlinkEntry,
)
from pants.engine.rules import collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.logging import LogLevel

from occlum import __version__
from occlum.attestation.ra_config import Measured, render_ra_config
from occlum.attestation.sbom import EnclaveFacts, ImageFile, SbomInputs, components_sha256, render_sbom
from occlum.config.releases import has_copy_bom, has_ra_config
from occlum.pants_compat import add_prefix, create_digest, get_digest_entries, merge_digests
from occlum.records import dump_json
from occlum.subsystems.occlum import OcclumSubsystem, StageOnly
from occlum.toolchain.copy_bom import render_copy_bom
from occlum.util_rules.enclave_package import EnclavePackageRequest, get_enclave_package
from occlum.util_rules.occlum_steps import INSTANCE
from occlum.util_rules.occlum_toolchain import MaybeOcclumToolchain, get_maybe_toolchain
from occlum.util_rules.staged_instance import OcclumJavaImageFieldSet, StagedOcclumInstance, get_staged_instance

logger = logging.getLogger(__name__)


def _staged_artifact(staged: StagedOcclumInstance, output_dir: str, bom: Optional[str]) -> BuiltPackageArtifact:
    summary = staged.summary
    lines = [
        f"Occlum {summary.occlum_release}, Java {summary.jdk.java_version} ({summary.jdk.libc}), "
        f"{summary.image_files} image files; staged only (no occlum build)"
    ]
    if summary.added_by_occlum_new:
        lines.append(f"`occlum new` adds {', '.join(summary.added_by_occlum_new)} when the enclave is built")
    if bom is None:
        lines.append(f"no copy_bom file: Occlum {summary.occlum_release} has no copy_bom (it appears in 0.24.1)")
    return BuiltPackageArtifact(output_dir, extra_log_lines=tuple(lines))


def bom_entries(entries: DigestEntries) -> list[tuple[str, str, str]]:
    """The staged image as copy_bom entries: (enclave path, kind, sha256 or link target)."""
    out = []
    for e in entries:
        if not e.path.startswith("image/"):
            continue
        path = e.path[len("image") :]
        if isinstance(e, FileEntry):
            out.append((path, "file", e.file_digest.fingerprint))
        elif isinstance(e, SymlinkEntry):
            out.append((path, "symlink", e.target))
        else:
            out.append((path, "dir", ""))
    return out


def image_files(entries: DigestEntries, prefix: str) -> tuple[ImageFile, ...]:
    """The files and symlinks under `prefix` (the image root), as enclave paths, for the SBOM."""
    out = []
    for e in entries:
        if not e.path.startswith(f"{prefix}/"):
            continue
        path = e.path[len(prefix) :]
        if isinstance(e, FileEntry):
            out.append(ImageFile(path, e.file_digest.fingerprint))
        elif isinstance(e, SymlinkEntry):
            out.append(ImageFile(path, None, e.target))
    return tuple(out)


def sbom_inputs(
    field_set: OcclumJavaImageFieldSet,
    staged: StagedOcclumInstance,
    files: tuple[ImageFile, ...],
    runtime_libs: tuple[str, ...],
    enclave: Optional[EnclaveFacts],
) -> SbomInputs:
    return SbomInputs(
        target=str(field_set.address),
        backend_version=__version__,
        occlum_release=staged.summary.occlum_release,
        debuggable=staged.summary.debuggable,
        product_id=field_set.product_id.value,
        version_number=field_set.version_number.value,
        jdk=staged.jdk_facts,
        jar=staged.jar_facts,
        runtime_libs=runtime_libs,
        files=files,
        enclave=enclave,
    )


def _skipped_because(occlum: OcclumSubsystem, maybe: Optional[MaybeOcclumToolchain]) -> Optional[str]:
    """Why the toolchain steps are skipped, or None when they run."""
    if occlum.stage_only == StageOnly.YES:
        return '`[occlum].stage_only = "yes"`'
    if maybe is not None and maybe.toolchain is None:
        searched = ", ".join(maybe.searched) or "the search path"
        return f'no `occlum` CLI on {searched} and `[occlum].stage_only = "auto"`'
    return None


@rule(desc="Packaging an Occlum Java image", level=LogLevel.DEBUG)
async def package_occlum_java_image(field_set: OcclumJavaImageFieldSet, occlum: OcclumSubsystem) -> BuiltPackage:
    staged = await get_staged_instance(field_set)
    output = field_set.output_path.checked_value()

    # 1. Stage only: by choice, or (with `auto`) because there is no toolchain here.
    maybe = await get_maybe_toolchain() if occlum.stage_only == StageOnly.AUTO else None
    skipped = _skipped_because(occlum, maybe)
    if skipped is not None:
        logger.warning(
            f"{field_set.address}: staged the instance only (Occlum.json + image/ in dist/{output}); "
            f"skipped `occlum new`, `occlum build`, `occlum package` and the measurements because of {skipped}."
        )
        # A copy_bom file beside it, so Occlum's own `copy_bom` can rebuild the same image.
        bom = None
        digest = staged.digest
        entries = await get_digest_entries(staged.digest)
        if has_copy_bom(staged.summary.occlum_release):
            bom = f"{os.path.basename(output)}.copy_bom.yaml"
            content = render_copy_bom(bom_entries(entries)).encode()
            bom_digest = await create_digest(CreateDigest([FileContent(bom, content)]))
            digest = await merge_digests(MergeDigests([staged.digest, bom_digest]))
        # The SBOM beside the folder, as beside a package; it says the image was not measured.
        sbom_name = f"{output}.cdx.json"
        sbom = sbom_inputs(field_set, staged, image_files(entries, "image"), tuple(occlum.runtime_libs), None)
        sbom_digest = await create_digest(CreateDigest([FileContent(sbom_name, dump_json(render_sbom(sbom)))]))
        out = await merge_digests(MergeDigests([await add_prefix(AddPrefix(digest, output)), sbom_digest]))
        return BuiltPackage(
            out,
            (
                _staged_artifact(staged, output, bom),
                BuiltPackageArtifact(sbom_name, extra_log_lines=("SBOM of the staged image: not measured",)),
            ),
        )

    # 2. Build, package and measure with the toolchain; then what a verifier needs beside it.
    pkg = await get_enclave_package(EnclavePackageRequest(field_set))
    record = pkg.record
    measured = Measured(
        mrenclave=record.mrenclave,
        mrsigner=record.mrsigner,
        isv_prod_id=record.product_id,
        isv_svn=record.version_number,
        debuggable=record.debuggable,
        sgx_mode=record.sgx_mode,
    )
    for warning in measured.warnings():
        logger.warning(f"{field_set.address}: {warning}")
    enclave = EnclaveFacts(
        mrenclave=record.mrenclave,
        mrsigner=record.mrsigner,
        sgx_mode=record.sgx_mode,
        package=record.package,
        package_sha256=record.package_sha256,
        signed_enclave_sha256=record.signed_enclave_sha256,
        toolchain_fingerprint=record.occlum_toolchain_fingerprint,
    )
    image = image_files(await get_digest_entries(pkg.image), f"{INSTANCE}/image")
    sbom_doc = render_sbom(sbom_inputs(field_set, staged, image, tuple(occlum.runtime_libs), enclave))
    record = dataclasses.replace(record, sbom_components_sha256=components_sha256(sbom_doc))
    files = [
        FileContent(f"{pkg.name}.measurements.json", record.serialize()),
        FileContent(f"{pkg.name}.cdx.json", dump_json(sbom_doc)),
    ]
    has_ra = has_ra_config(record.occlum_release)
    if has_ra:
        files.append(FileContent(f"{pkg.name}.ra_config.json", dump_json(render_ra_config(measured))))
    records = await create_digest(CreateDigest(files))
    merged = await merge_digests(MergeDigests([pkg.tarball, records]))
    parent = os.path.dirname(output)
    digest = await add_prefix(AddPrefix(merged, parent)) if parent else merged
    prefix = f"{parent}/" if parent else ""
    ra_lines = (
        (f"for Occlum's attestation flows (grpc_ratls, init_ra); {len(measured.warnings())} warning(s) in it",)
        if has_ra
        else ()
    )
    return BuiltPackage(
        digest,
        (
            BuiltPackageArtifact(
                f"{prefix}{pkg.name}.tar.gz",
                extra_log_lines=(
                    f"MRENCLAVE {record.mrenclave}",
                    f"MRSIGNER  {record.mrsigner}",
                    *(f"WARNING: {w}" for w in measured.warnings()),
                ),
            ),
            BuiltPackageArtifact(f"{prefix}{pkg.name}.measurements.json"),
            BuiltPackageArtifact(
                f"{prefix}{pkg.name}.cdx.json", extra_log_lines=("SBOM (CycloneDX 1.7), bound to the MRENCLAVE above",)
            ),
            *(
                (BuiltPackageArtifact(f"{prefix}{pkg.name}.ra_config.json", extra_log_lines=ra_lines),)
                if has_ra
                else ()
            ),
        ),
    )


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, OcclumJavaImageFieldSet)]
