"""`pants package` for `occlum_java_image`: the signed Occlum package and its measurements, or, with
`[occlum].stage_only`, the staged instance (`Occlum.json` + `image/`) and a copy_bom file."""

from __future__ import annotations

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

from occlum.config.releases import has_copy_bom
from occlum.pants_compat import add_prefix, create_digest, get_digest_entries, merge_digests
from occlum.subsystems.occlum import OcclumSubsystem, StageOnly
from occlum.toolchain.copy_bom import render_copy_bom
from occlum.util_rules.enclave_package import EnclavePackageRequest, get_enclave_package
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
    output = field_set.output_path.value_or_default(file_ending=None)

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
        if has_copy_bom(staged.summary.occlum_release):
            entries = await get_digest_entries(staged.digest)
            bom = f"{os.path.basename(output)}.copy_bom.yaml"
            content = render_copy_bom(bom_entries(entries)).encode()
            bom_digest = await create_digest(CreateDigest([FileContent(bom, content)]))
            digest = await merge_digests(MergeDigests([staged.digest, bom_digest]))
        return BuiltPackage(await add_prefix(AddPrefix(digest, output)), (_staged_artifact(staged, output, bom),))

    # 2. Build, package and measure with the toolchain.
    pkg = await get_enclave_package(EnclavePackageRequest(field_set))
    parent = os.path.dirname(output)
    meas = await create_digest(CreateDigest([FileContent(f"{pkg.name}.measurements.json", pkg.record.serialize())]))
    merged = await merge_digests(MergeDigests([pkg.tarball, meas]))
    digest = await add_prefix(AddPrefix(merged, parent)) if parent else merged
    prefix = f"{parent}/" if parent else ""
    return BuiltPackage(
        digest,
        (
            BuiltPackageArtifact(
                f"{prefix}{pkg.name}.tar.gz",
                extra_log_lines=(f"MRENCLAVE {pkg.measurements.mrenclave}", f"MRSIGNER  {pkg.measurements.mrsigner}"),
            ),
            BuiltPackageArtifact(f"{prefix}{pkg.name}.measurements.json"),
        ),
    )


def rules():
    return [*collect_rules(), UnionRule(PackageFieldSet, OcclumJavaImageFieldSet)]
