"""The staged Occlum instance of an `occlum_java_image`: `Occlum.json` + `image/` + its summary.

This is the pipeline every goal shares (package, run, check-reproducible, enclave-memory), as
Pants' docker backend shares its build context: the memory plan first (so a limit that cannot hold
the JVM fails before any download), then the JDK and the jar in parallel, then the config and the
image's extra files, then the layout. Everything after the JDK fetch is digest operations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Optional

from pants.build_graph.address import ResolveError
from pants.core.goals.package import PackageFieldSet
from pants.engine.fs import CreateDigest, Digest, FileContent, MergeDigests
from pants.engine.rules import collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from occlum.attestation.sbom import JarFacts, JdkFacts
from occlum.config.model import LIMITS, OcclumConfigInputs
from occlum.jar.dependency_lock import check_lock
from occlum.jar.inspect_jar import JarError, check_runs_on
from occlum.jvm.options import effective_jvm_options, java_command
from occlum.pants_compat import (
    EnvironmentField,
    concurrently,
    create_digest,
    merge_digests,
    resolve_unparsed_address_inputs,
    rule_call,
)
from occlum.records import ImageSummaryV1, JarRecord, JdkRecord
from occlum.sizing.plan import MemoryPlan, plan_memory
from occlum.subsystems.occlum import OcclumSubsystem
from occlum.target_types import (
    AddressFieldError,
    OcclumJavaImageChildProcessesField,
    OcclumJavaImageDebuggableField,
    OcclumJavaImageDefaultHeapSizeField,
    OcclumJavaImageDefaultMmapSizeField,
    OcclumJavaImageDefaultStackSizeField,
    OcclumJavaImageDependencyLockField,
    OcclumJavaImageEnvField,
    OcclumJavaImageFilesField,
    OcclumJavaImageJarDirField,
    OcclumJavaImageJarField,
    OcclumJavaImageJavaThreadsField,
    OcclumJavaImageJdkDirField,
    OcclumJavaImageJdkField,
    OcclumJavaImageJvmOptionsField,
    OcclumJavaImageKernelSpaceHeapMaxSizeField,
    OcclumJavaImageKernelSpaceHeapSizeField,
    OcclumJavaImageKernelSpaceStackSizeField,
    OcclumJavaImageMainArgsField,
    OcclumJavaImageMaxNumOfThreadsField,
    OcclumJavaImageMemoryHeadroomField,
    OcclumJavaImageMountsField,
    OcclumJavaImageOutputPathField,
    OcclumJavaImageProductIdField,
    OcclumJavaImageUntrustedEnvField,
    OcclumJavaImageUserSpaceMaxSizeField,
    OcclumJavaImageUserSpaceSizeField,
    OcclumJavaImageVersionNumberField,
    OcclumSizeField,
)
from occlum.util_rules.dependency_lock import (
    DependencyLockFieldError,
    DependencyLockRequest,
    PinnedDependencies,
    get_pinned_dependencies,
)
from occlum.util_rules.dragonwell_jdk import DragonwellJdkRequest, get_dragonwell_jdk
from occlum.util_rules.image_files import ImageFilesRequest, get_image_files
from occlum.util_rules.image_layout import ImageLayoutRequest, ImagePart, get_image_layout
from occlum.util_rules.occlum_config import (
    OcclumConfig,
    OcclumConfigRequest,
    check_release,
    config_inputs,
    get_occlum_config,
)
from occlum.util_rules.service_jar import ServiceJar, ServiceJarError, ServiceJarRequest, get_service_jar

logger = logging.getLogger(__name__)

SUMMARY_FILE = "occlum-image.json"


@dataclass(frozen=True)
class OcclumJavaImageFieldSet(PackageFieldSet):
    required_fields = (OcclumJavaImageJdkField, OcclumJavaImageJarField)

    jdk: OcclumJavaImageJdkField
    jar: OcclumJavaImageJarField
    dependency_lock: OcclumJavaImageDependencyLockField
    jvm_options: OcclumJavaImageJvmOptionsField
    main_args: OcclumJavaImageMainArgsField
    env: OcclumJavaImageEnvField
    untrusted_env: OcclumJavaImageUntrustedEnvField
    user_space_size: OcclumJavaImageUserSpaceSizeField
    user_space_max_size: OcclumJavaImageUserSpaceMaxSizeField
    kernel_space_heap_size: OcclumJavaImageKernelSpaceHeapSizeField
    kernel_space_heap_max_size: OcclumJavaImageKernelSpaceHeapMaxSizeField
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
    summary: ImageSummaryV1
    config: OcclumConfig
    jdk_facts: JdkFacts  # for the SBOM
    jar_facts: JarFacts


def memory_plan_for(field_set: OcclumJavaImageFieldSet, release: str) -> MemoryPlan:
    """The image's limits: hand-set fields, the rest derived from its JVM options."""
    given: dict[str, Optional[int]] = {}
    for limit in LIMITS:  # each limit is the field of the same name: sizes in bytes, threads as is
        field = getattr(field_set, limit.name)
        given[limit.name] = field.bytes if isinstance(field, OcclumSizeField) else field.value
    return plan_memory(
        str(field_set.address),
        release,
        tuple(field_set.jvm_options.value or ()),
        given,
        java_threads=field_set.java_threads.value,
        child_processes=field_set.child_processes.value,
        headroom_percent=float(field_set.memory_headroom.value),
    )


def default_jdk_dir(java_major: int) -> str:
    return f"/usr/lib/jvm/java-{java_major}-alibaba-dragonwell/jre"


def config_inputs_for(field_set: OcclumJavaImageFieldSet, memory: MemoryPlan, jdk_dir: str) -> OcclumConfigInputs:
    """What Occlum.json is made from: the memory plan's limits and the fields. Pure, so the
    `enclave-memory` goal refuses what `package` would refuse, without the JDK."""
    limits: dict[str, Any] = {limit.name: memory.limits.get(limit.name) for limit in LIMITS}
    return config_inputs(
        field_set.address,
        **limits,
        entry_points=(f"{jdk_dir}/bin",),
        env_default=enclave_env(jdk_dir, field_set.env.value or ()),
        env_untrusted=tuple(field_set.untrusted_env.value or ()),
        debuggable=field_set.debuggable.value,
        product_id=field_set.product_id.value,
        version_number=field_set.version_number.value,
        extra_mounts=field_set.mounts.value,
    )


def ld_library_path(jdk_dir: str) -> str:
    # The seed's value: the JDK's server and lib folders, and the image's /lib beside the JDK.
    return f"LD_LIBRARY_PATH={jdk_dir}/lib/server:{jdk_dir}/lib:{jdk_dir}/../lib"


def enclave_env(jdk_dir: str, user_env: tuple[str, ...]) -> tuple[str, ...]:
    """`env.default`: LD_LIBRARY_PATH for the JDK unless the user sets it, then the user's."""
    user_sets_ldpath = any(e.startswith("LD_LIBRARY_PATH=") for e in user_env)
    return (*(() if user_sets_ldpath else (ld_library_path(jdk_dir),)), *user_env)


def _check_lock(field_set: OcclumJavaImageFieldSet, jar: ServiceJar, pinned: PinnedDependencies) -> None:
    differ = check_lock(pinned.pins, jar.info.nested)
    if differ:
        shown = "".join(f"  - {d.entry}: {d.problem}\n" for d in differ[:20])
        more = f"  ... and {len(differ) - 20} more\n" if len(differ) > 20 else ""
        raise DependencyLockFieldError(
            f"The jar of {field_set.address} ({jar.source}) does not hold the nested jars its "
            f"`dependency_lock` ({pinned.path}) pins:\n{shown}{more}"
            "If the change is intended, review it and regenerate the lock (`sha256sum *.jar` in the unpacked "
            "jar's BOOT-INF/lib/, as docs/spring-boot.md shows); otherwise find what changed the dependency."
        )


@rule(desc="Staging an Occlum instance", level=LogLevel.DEBUG)
async def stage_occlum_instance(field_set: OcclumJavaImageFieldSet, occlum: OcclumSubsystem) -> StagedOcclumInstance:
    # 0. Memory limits first: a limit that cannot hold the JVM fails before any download.
    memory = memory_plan_for(field_set, check_release(occlum.version))
    # And fields that only clash together (a mount's cache above the kernel heap): also before
    # the download; the JDK's folder only moves paths, so Java 11's stands in until it is known.
    config_inputs_for(field_set, memory, field_set.jdk_dir.value or default_jdk_dir(11))
    for finding in memory.findings:
        if finding.severity == "warning":
            logger.warning(f"{field_set.address}: {finding.message}")

    # 1. The JDK, the jar and its lock, in parallel: none depends on another.
    try:
        jdk_addresses = await resolve_unparsed_address_inputs(field_set.jdk.to_unparsed_address_inputs())
    except ResolveError:
        raise AddressFieldError(field_set.jdk.unresolved()) from None
    jdk, jar, pinned = await concurrently(
        get_dragonwell_jdk(
            DragonwellJdkRequest(jdk_addresses[0], f"The `jdk` field of {field_set.address}"),
        ),
        get_service_jar(ServiceJarRequest(field_set.address, field_set.jar.to_unparsed_address_inputs())),
        get_pinned_dependencies(DependencyLockRequest(field_set.address, field_set.dependency_lock)),
    )
    try:
        check_runs_on(jar.info, jdk.info.java_major, jdk.info.java_version)
    except JarError as e:
        raise ServiceJarError(f"The `jar` field of {field_set.address} names {jar.source}: {e}") from e
    if pinned.path is not None:
        _check_lock(field_set, jar, pinned)

    # 2. Where things go in the enclave, and the config that points at them.
    jdk_dir = field_set.jdk_dir.value or default_jdk_dir(jdk.info.java_major)
    jar_dir = field_set.jar_dir.value
    jar_path = f"{jar_dir}/{jar.name}"
    inputs = config_inputs_for(field_set, memory, jdk_dir)
    config, files = await concurrently(
        get_occlum_config(OcclumConfigRequest(field_set.address, occlum.version, inputs)),
        get_image_files(ImageFilesRequest(field_set.address, FrozenDict(field_set.files.value or {}))),
    )

    # 3. The image: digest operations only.
    layout = await get_image_layout(
        ImageLayoutRequest(
            field_set.address,
            (
                ImagePart(
                    jdk.digest,
                    jdk_dir,
                    f"the JDK of {jdk.address}",
                    f"set a `jdk_dir` of fewer components on {field_set.address} (now {jdk_dir!r})",
                ),
                ImagePart(
                    jar.digest,
                    jar_dir,
                    f"the jar {jar.source}",
                    f"set a `jar_dir` of fewer components on {field_set.address} (now {jar_dir!r})",
                ),
                *files.parts,
            ),
        ),
    )
    jvm_options = effective_jvm_options(tuple(field_set.jvm_options.value or ()))
    summary = ImageSummaryV1(
        target=str(field_set.address),
        occlum_release=config.release,
        jdk=JdkRecord(
            target=str(jdk.address),
            dragonwell=jdk.pin.describe(),
            java_version=jdk.info.java_version,
            libc=jdk.info.libc,
            interpreter=jdk.info.interpreter,
            sha256=jdk.pin.sha256,
            enclave_dir=jdk_dir,
        ),
        jar=JarRecord(
            source=jar.source,
            enclave_path=jar_path,
            main_class=jar.info.main_class,
            class_file_major=jar.info.max_class_major,
        ),
        command=java_command(jdk_dir, jvm_options, jar_path, tuple(field_set.main_args.value or ())),
        memory=memory.summary(),
        debuggable=field_set.debuggable.value,
        image_files=layout.files,
        added_by_occlum_new=tuple(f"/lib/{lib}" for lib in occlum.runtime_libs),
    )
    summary_digest = await create_digest(CreateDigest([FileContent(SUMMARY_FILE, summary.serialize())]))
    digest = await merge_digests(MergeDigests([layout.digest, config.digest, summary_digest]))
    jdk_facts = JdkFacts(
        target=str(jdk.address),
        version=jdk.pin.version,
        edition=jdk.pin.edition,
        libc=jdk.pin.libc,
        platform=jdk.pin.platform,
        java_version=jdk.info.java_version,
        archive_sha256=jdk.pin.sha256,
        url=jdk.pin.url,
        enclave_dir=jdk_dir,
        implementor=jdk.info.implementor,
    )
    jar_facts = JarFacts(
        name=jar.name,
        sha256=jar.info.sha256,
        enclave_path=jar_path,
        main_class=jar.info.main_class,
        start_class=jar.info.start_class,
        maven=jar.info.maven,
        nested=jar.info.nested,
    )
    return StagedOcclumInstance(digest, summary, config, jdk_facts, jar_facts)


get_staged_instance = rule_call(stage_occlum_instance)


def rules():
    return collect_rules()
