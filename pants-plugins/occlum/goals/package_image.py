"""`pants package` for `occlum_java_image`: a staged Occlum instance (`Occlum.json` + `image/`)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

from pants.core.goals.package import BuiltPackage, BuiltPackageArtifact, PackageFieldSet
from pants.core.util_rules.environments import EnvironmentField
from pants.engine.addresses import Addresses, UnparsedAddressInputs
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestEntries,
    FileContent,
    FileEntry,
    MergeDigests,
    SymlinkEntry,
)
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.engine.unions import UnionRule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from occlum.config.model import Mount, OcclumConfigInputs
from occlum.config.releases import has_package_debug
from occlum.jar.inspect_jar import JarError, check_runs_on
from occlum.jvm.options import effective_jvm_options, java_command
from occlum.subsystems.occlum import OcclumSubsystem, SgxMode, StageOnly
from occlum.target_types import (
    OcclumJavaImageChildProcessesField,
    OcclumJavaImageDebuggableField,
    OcclumJavaImageDefaultHeapSizeField,
    OcclumJavaImageDefaultMmapSizeField,
    OcclumJavaImageDefaultStackSizeField,
    OcclumJavaImageEnvField,
    OcclumJavaImageFilesField,
    OcclumJavaImageJarDirField,
    OcclumJavaImageJarField,
    OcclumJavaImageJavaThreadsField,
    OcclumJavaImageJdkDirField,
    OcclumJavaImageJdkField,
    OcclumJavaImageJvmOptionsField,
    OcclumJavaImageKernelSpaceHeapSizeField,
    OcclumJavaImageKernelSpaceStackSizeField,
    OcclumJavaImageMainArgsField,
    OcclumJavaImageMaxNumOfThreadsField,
    OcclumJavaImageMemoryHeadroomField,
    OcclumJavaImageMountsField,
    OcclumJavaImageOutputPathField,
    OcclumJavaImageProductIdField,
    OcclumJavaImageUntrustedEnvField,
    OcclumJavaImageUserSpaceSizeField,
    OcclumJavaImageVersionNumberField,
    OcclumSizeField,
)
from occlum.util_rules.copy_bom import render_copy_bom
from occlum.util_rules.dragonwell_jdk import DownloadedDragonwellJdk, DragonwellJdkRequest
from occlum.util_rules.enclave import EnclaveBuildRequest
from occlum.util_rules.image_files import ImageFiles, ImageFilesRequest
from occlum.util_rules.image_layout import ImageLayout, ImageLayoutRequest, ImagePart
from occlum.util_rules.memory_plan import KNOBS, MemoryPlan, plan_memory
from occlum.util_rules.occlum_config import OcclumConfig, OcclumConfigRequest, check_release
from occlum.util_rules.occlum_steps import (
    BuiltOcclumInstance,
    OcclumMeasurements,
    OcclumPackage,
    OcclumPackageRequest,
    OcclumStepError,
)
from occlum.util_rules.occlum_toolchain import MaybeOcclumToolchain
from occlum.util_rules.service_jar import ServiceJar, ServiceJarError, ServiceJarRequest

logger = logging.getLogger(__name__)

SUMMARY_FILE = "occlum-image.json"


@dataclass(frozen=True)
class OcclumJavaImageFieldSet(PackageFieldSet):
    required_fields = (OcclumJavaImageJdkField, OcclumJavaImageJarField)

    jdk: OcclumJavaImageJdkField
    jar: OcclumJavaImageJarField
    jvm_options: OcclumJavaImageJvmOptionsField
    main_args: OcclumJavaImageMainArgsField
    env: OcclumJavaImageEnvField
    untrusted_env: OcclumJavaImageUntrustedEnvField
    user_space_size: OcclumJavaImageUserSpaceSizeField
    kernel_space_heap_size: OcclumJavaImageKernelSpaceHeapSizeField
    kernel_space_stack_size: OcclumJavaImageKernelSpaceStackSizeField
    max_num_of_threads: OcclumJavaImageMaxNumOfThreadsField
    java_threads: OcclumJavaImageJavaThreadsField
    child_processes: OcclumJavaImageChildProcessesField
    memory_headroom: OcclumJavaImageMemoryHeadroomField
    default_heap_size: OcclumJavaImageDefaultHeapSizeField
    default_stack_size: OcclumJavaImageDefaultStackSizeField
    default_mmap_size: OcclumJavaImageDefaultMmapSizeField
    debuggable: OcclumJavaImageDebuggableField
    product_id: OcclumJavaImageProductIdField
    version_number: OcclumJavaImageVersionNumberField
    mounts: OcclumJavaImageMountsField
    files: OcclumJavaImageFilesField
    jdk_dir: OcclumJavaImageJdkDirField
    jar_dir: OcclumJavaImageJarDirField
    output_path: OcclumJavaImageOutputPathField
    environment: EnvironmentField


@dataclass(frozen=True)
class StagedOcclumInstance:
    """`Occlum.json` + `image/` + the summary, at the digest root, as `occlum build` consumes them."""

    digest: Digest
    summary: dict  # noqa: the dict is built once and only read
    config: OcclumConfig

    def __hash__(self) -> int:  # dicts are unhashable; the digest identifies the instance
        return hash(self.digest)


def memory_plan_for(field_set: OcclumJavaImageFieldSet, release: str) -> MemoryPlan:
    """The image's limits: hand-set fields, the rest derived from its JVM options."""
    # Each knob is the field of the same name: sizes in bytes, the thread count as is.
    fields = {knob: getattr(field_set, knob) for knob in KNOBS}
    given = {k: f.bytes if isinstance(f, OcclumSizeField) else f.value for k, f in fields.items()}
    return plan_memory(
        field_set.address,
        release,
        tuple(field_set.jvm_options.value or ()),
        given,
        java_threads=field_set.java_threads.value,
        child_processes=field_set.child_processes.value,
        headroom_percent=float(field_set.memory_headroom.value),
    )


def ld_library_path(jdk_dir: str) -> str:
    # The seed's value: the JDK's server and lib folders, and the image's /lib beside the JDK.
    return f"LD_LIBRARY_PATH={jdk_dir}/lib/server:{jdk_dir}/lib:{jdk_dir}/../lib"


def enclave_env(jdk_dir: str, user_env: tuple[str, ...]) -> tuple[str, ...]:
    """`env.default`: LD_LIBRARY_PATH for the JDK unless the user sets it, then the user's."""
    user_sets_ldpath = any(e.startswith("LD_LIBRARY_PATH=") for e in user_env)
    return (*(() if user_sets_ldpath else (ld_library_path(jdk_dir),)), *user_env)


@rule(desc="Staging an Occlum instance", level=LogLevel.DEBUG)
async def stage_occlum_instance(field_set: OcclumJavaImageFieldSet, occlum: OcclumSubsystem) -> StagedOcclumInstance:
    # 0. Memory limits first: a limit that cannot hold the JVM fails before any download.
    memory = memory_plan_for(field_set, check_release(occlum.version))
    for finding in memory.findings:
        if finding.severity == "warning":
            logger.warning(f"{field_set.address}: {finding.message}")

    # 1. The JDK and the jar, in parallel: neither depends on the other.
    jdk_addresses = await Get(Addresses, UnparsedAddressInputs, field_set.jdk.to_unparsed_address_inputs())
    jdk, jar = await MultiGet(
        Get(
            DownloadedDragonwellJdk,
            DragonwellJdkRequest(jdk_addresses[0], f"The `jdk` field of {field_set.address}"),
        ),
        Get(ServiceJar, ServiceJarRequest(field_set.address, field_set.jar.to_unparsed_address_inputs())),
    )
    try:
        check_runs_on(jar.info, jdk.info.java_major, jdk.info.java_version)
    except JarError as e:
        raise ServiceJarError(f"The `jar` field of {field_set.address} names {jar.source}: {e}") from e

    # 2. Where things go in the enclave, and the config that points at them.
    jdk_dir = field_set.jdk_dir.value or f"/usr/lib/jvm/java-{jdk.info.java_major}-alibaba-dragonwell/jre"
    jar_dir = field_set.jar_dir.value
    jar_path = f"{jar_dir}/{jar.name}"
    limits = memory.limits
    inputs = OcclumConfigInputs(
        user_space_size=limits["user_space_size"],
        kernel_space_heap_size=limits["kernel_space_heap_size"],
        kernel_space_stack_size=limits["kernel_space_stack_size"],
        max_num_of_threads=limits["max_num_of_threads"],
        default_heap_size=limits["default_heap_size"],
        default_stack_size=limits["default_stack_size"],
        default_mmap_size=limits["default_mmap_size"],
        entry_points=(f"{jdk_dir}/bin",),
        env_default=enclave_env(jdk_dir, field_set.env.value or ()),
        env_untrusted=tuple(field_set.untrusted_env.value or ()),
        debuggable=field_set.debuggable.value,
        product_id=field_set.product_id.value,
        version_number=field_set.version_number.value,
        extra_mounts=tuple(
            Mount(target=m.target, type=m.type, source=m.source, options=m.options) for m in field_set.mounts.value
        ),
    )
    config, files = await MultiGet(
        Get(OcclumConfig, OcclumConfigRequest(field_set.address, occlum.version, inputs)),
        Get(ImageFiles, ImageFilesRequest(field_set.address, FrozenDict(field_set.files.value or {}))),
    )

    # 3. The image: digest operations only.
    layout = await Get(
        ImageLayout,
        ImageLayoutRequest(
            field_set.address,
            (
                ImagePart(jdk.digest, jdk_dir, f"the JDK of {jdk.address}"),
                ImagePart(jar.digest, jar_dir, f"the jar {jar.source}"),
                *files.parts,
            ),
        ),
    )
    jvm_options = effective_jvm_options(tuple(field_set.jvm_options.value or ()))
    summary = {
        "target": str(field_set.address),
        "occlum_release": config.release,
        "jdk": {
            "target": str(jdk.address),
            "dragonwell": jdk.pin.describe(),
            "java_version": jdk.info.java_version,
            "libc": jdk.info.libc,
            "interpreter": jdk.info.interpreter,
            "sha256": jdk.pin.sha256,
            "enclave_dir": jdk_dir,
        },
        "jar": {
            "source": jar.source,
            "enclave_path": jar_path,
            "main_class": jar.info.main_class,
            "class_file_major": jar.info.max_class_major,
        },
        "command": list(java_command(jdk_dir, jvm_options, jar_path, tuple(field_set.main_args.value or ()))),
        "memory": memory.summary(),
        "debuggable": field_set.debuggable.value,
        "image_files": layout.files,
    }
    summary_digest = await Get(
        Digest,
        CreateDigest([FileContent(SUMMARY_FILE, (json.dumps(summary, indent=2, sort_keys=True) + "\n").encode())]),
    )
    digest = await Get(Digest, MergeDigests([layout.digest, config.digest, summary_digest]))
    return StagedOcclumInstance(digest, summary, config)


@dataclass(frozen=True)
class EnclavePackageRequest:
    field_set: OcclumJavaImageFieldSet
    nonce: str = ""  # non-empty: run every toolchain step again instead of using the cache


@dataclass(frozen=True)
class EnclavePackage:
    name: str
    tarball: Digest  # <name>.tar.gz at the root, re-packed to depend only on its contents
    measurements: OcclumMeasurements
    record: bytes  # the measurements JSON


@rule(desc="Building, signing and packaging an enclave", level=LogLevel.DEBUG)
async def build_enclave_package(request: EnclavePackageRequest, occlum: OcclumSubsystem) -> EnclavePackage:
    field_set = request.field_set
    staged = await Get(StagedOcclumInstance, OcclumJavaImageFieldSet, field_set)
    debuggable = bool(staged.summary["debuggable"])
    built = await Get(
        BuiltOcclumInstance, EnclaveBuildRequest(field_set.address, staged.digest, debuggable, request.nonce)
    )
    name = os.path.basename(field_set.output_path.value_or_default(file_ending=None))
    # `occlum package` refuses debuggable and SIM instances without --debug, once it has the flag.
    sim = occlum.sgx_mode == SgxMode.SIM
    has_debug_flag = has_package_debug(built.toolchain.release)
    if sim and not has_debug_flag:
        raise OcclumStepError(
            f"Occlum {built.toolchain.release} cannot package a SIM instance (`occlum package` only "
            f"takes hardware-mode instances before 0.24.0), so {field_set.address} cannot be packaged "
            'with `[occlum].sgx_mode = "SIM"`. Use `sgx_mode = "HW"` (building needs no SGX) or '
            "`[occlum].stage_only`."
        )
    needs_debug = (debuggable or sim) and has_debug_flag
    package, measurements = await MultiGet(
        Get(OcclumPackage, OcclumPackageRequest(field_set.address, built, name, needs_debug, request.nonce)),
        Get(OcclumMeasurements, BuiltOcclumInstance, built),
    )
    record = {
        "target": str(field_set.address),
        "mrenclave": measurements.mrenclave,
        "mrsigner": measurements.mrsigner,
        "occlum_release": built.toolchain.release,
        "occlum_toolchain_fingerprint": built.toolchain.fingerprint,
        "sgx_mode": occlum.sgx_mode.value,
        "debuggable": debuggable,
        "product_id": field_set.product_id.value,
        "version_number": field_set.version_number.value,
        "package": f"{name}.tar.gz",
        "image": staged.summary,
    }
    return EnclavePackage(
        name, package.digest, measurements, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    )


def _staged_artifact(staged: StagedOcclumInstance, output_dir: str) -> BuiltPackageArtifact:
    summary = staged.summary
    log = (
        f"Occlum {summary['occlum_release']}, Java {summary['jdk']['java_version']} "
        f"({summary['jdk']['libc']}), {summary['image_files']} image files; staged only (no occlum build)"
    )
    return BuiltPackageArtifact(output_dir, extra_log_lines=(log,))


def _bom_entries(entries: DigestEntries) -> list[tuple[str, str, str]]:
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


@rule(desc="Packaging an Occlum Java image", level=LogLevel.DEBUG)
async def package_occlum_java_image(field_set: OcclumJavaImageFieldSet, occlum: OcclumSubsystem) -> BuiltPackage:
    staged = await Get(StagedOcclumInstance, OcclumJavaImageFieldSet, field_set)
    output = field_set.output_path.value_or_default(file_ending=None)

    # 1. Stage only: by choice, or (with `auto`) because there is no toolchain here.
    skipped = None
    if occlum.stage_only == StageOnly.YES:
        skipped = '`[occlum].stage_only = "yes"`'
    elif occlum.stage_only == StageOnly.AUTO:
        maybe = await Get(MaybeOcclumToolchain)
        if maybe.toolchain is None:
            skipped = f'no `occlum` CLI on {", ".join(maybe.searched) or "the search path"} and `[occlum].stage_only = "auto"`'
    if skipped is not None:
        logger.warning(
            f"{field_set.address}: staged the instance only (Occlum.json + image/ in dist/{output}); "
            f"skipped `occlum new`, `occlum build`, `occlum package` and the measurements because of {skipped}."
        )
        # A copy_bom file beside it, so Occlum's own `copy_bom` can rebuild the same image.
        entries = await Get(DigestEntries, Digest, staged.digest)
        bom = render_copy_bom(_bom_entries(entries)).encode()
        bom_digest = await Get(Digest, CreateDigest([FileContent(f"{os.path.basename(output)}.copy_bom.yaml", bom)]))
        digest = await Get(Digest, MergeDigests([staged.digest, bom_digest]))
        return BuiltPackage(await Get(Digest, AddPrefix(digest, output)), (_staged_artifact(staged, output),))

    # 2. Build, package and measure with the toolchain.
    pkg = await Get(EnclavePackage, EnclavePackageRequest(field_set))
    parent = os.path.dirname(output)
    meas = await Get(Digest, CreateDigest([FileContent(f"{pkg.name}.measurements.json", pkg.record)]))
    merged = await Get(Digest, MergeDigests([pkg.tarball, meas]))
    digest = await Get(Digest, AddPrefix(merged, parent)) if parent else merged
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
