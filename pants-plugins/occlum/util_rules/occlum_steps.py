"""The Occlum toolchain steps, each its own cached Process: `new`, and `build` (with, for `pants
package`, the package and the measurements in the same sandbox).

The package is not written by `occlum package`: the backend writes the same files in one
reproducible pass (toolchain/package_tool.py says why), reusing the deflated bytes of files an
earlier package already holds (a named cache, `occlum_package_segments`). It is written in the
build's own sandbox (toolchain/build_and_package.py says why).

Cache keys: every step's env carries the toolchain identity (release + fingerprint), so an Occlum
upgrade re-runs exactly these steps. `occlum new` sees only the toolchain and `runtime_libs`, never
the jar or the JDK. `occlum build` sees the signing key's path and MRSIGNER, never its bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from pants.engine.addresses import Address
from pants.engine.fs import (
    AddPrefix,
    CreateDigest,
    Digest,
    DigestSubset,
    MergeDigests,
    PathGlobs,
)
from pants.engine.process import FallibleProcessResult, Process
from pants.engine.rules import collect_rules, rule
from pants.util.logging import LogLevel

from occlum.config.releases import has_print
from occlum.pants_compat import (
    add_prefix,
    concurrently,
    create_digest,
    digest_subset_to_digest,
    digest_to_snapshot,
    execute_process,
    get_digest_contents,
    merge_digests,
    rule_call,
    rule_call_in_environment,
)
from occlum.toolchain.build_and_package import MEASURE_FAILED, MEASURED, PACKAGE_FAILED, SIGNED_ENCLAVE
from occlum.toolchain.measurements import MeasurementParseError, parse_print_output, parse_sgx_sign_dump
from occlum.util_rules.bundled_tools import CACHE_FIRST_MILLIS, tool_error, tool_files, tool_path
from occlum.util_rules.occlum_toolchain import OcclumStepEnv, OcclumToolchain
from occlum.util_rules.tool_python import ToolPython

INSTANCE = "occlum_instance"
# What `occlum build` leaves in an instance (docs/occlum-contract.md §2.4): folders and state dotfiles.
# Not `image/`: the build only reads it, and re-capturing a JDK-sized tree costs every build.
INSTANCE_DIRS = ("build", "run", "initfs")
# The one file of the built instance a package's records need besides the tarball (its sha256).
SIGNED = f"{INSTANCE}/{SIGNED_ENCLAVE}"
INSTANCE_FILES = ("Occlum.json", ".__occlum_status", ".sgx_mode", "init_ra_conf.json")
SKELETON_TOOL = "toolchain/skeleton_tool.py"
PACKAGE_TOOL = "toolchain/package_tool.py"
BUILD_AND_PACKAGE = "toolchain/build_and_package.py"
GUARDED_RUN = "toolchain/guarded_run.py"
# Deflated files kept by content between package steps (toolchain/package_tool.py), in Pants'
# named caches: a jar change deflates the files it touched, not the JDK again.
SEGMENT_CACHE_NAME = "occlum_package_segments"
SEGMENT_CACHE = ".occlum-package-segments"


class OcclumStepError(Exception):
    pass


@dataclass(frozen=True)
class OcclumSkeletonRequest:
    toolchain: OcclumToolchain
    runtime_libs: tuple[str, ...]
    nonce: str = ""  # non-empty: a forced re-run (check-reproducible), never a cache hit of a normal build


@dataclass(frozen=True)
class OcclumSkeleton:
    digest: Digest  # occlum_instance/ as `occlum new` made it, plus image/lib/<runtime libs>


@dataclass(frozen=True)
class PackageSpec:
    name: str  # the package's base name, without .tar.gz
    debug: bool  # as `occlum package --debug`


@dataclass(frozen=True)
class OcclumBuildRequest:
    address: Address
    toolchain: OcclumToolchain
    skeleton: OcclumSkeleton
    staged: Digest  # Occlum.json + image/ at the root
    sgx_mode: str
    sign_key: Optional[str]
    sign_tool: Optional[str]
    mrsigner: str
    nonce: str = ""
    package: Optional[PackageSpec] = None  # also write the package, in the build's sandbox


@dataclass(frozen=True)
class BuiltOcclumInstance:
    # occlum_instance/ after `occlum build`: build/, run/, initfs/, dotfiles, Occlum.json (no
    # image/); with a package, only the signed enclave (SIGNED).
    digest: Digest
    toolchain: OcclumToolchain
    image: Digest  # occlum_instance/image/ as the build read it (skeleton + staged), for `pants run`
    package: Optional[Digest] = None  # <name>.tar.gz at the root, when asked for
    measured: Optional[Digest] = None  # with the package: what the measurement tool wrote (MEASURED/)


@dataclass(frozen=True)
class OcclumMeasurements:
    mrenclave: str
    mrsigner: str


def _env(step_env: OcclumStepEnv, toolchain: OcclumToolchain, nonce: str = "", **extra: str) -> dict[str, str]:
    rerun = {"__OCCLUM_REBUILD": nonce} if nonce else {}
    return {**step_env.env, "__OCCLUM_TOOLCHAIN": toolchain.identity, **rerun, **extra}


def _failure(step: str, address: Optional[Address], result: FallibleProcessResult, hint: str) -> OcclumStepError:
    out = (result.stdout + result.stderr).decode("utf-8", "replace").strip()
    tail = "\n".join(out.splitlines()[-25:])
    where = f" for {address}" if address else ""
    return OcclumStepError(
        f"`{step}`{where} failed with exit code {result.exit_code}. Its output ends with:\n{tail}\n{hint}"
    )


def measure_failure(address: Address, stderr: bytes) -> OcclumStepError:
    """The error for a build step whose measurement tool failed (build_and_package.py's
    MEASURE_FAILED): the tool's stderr, then the script's `error: ` line, then the tool's stdout."""
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    at = max((i for i, line in enumerate(lines) if line.startswith("error: `")), default=len(lines))
    said = lines[at][len("error: ") :] if at < len(lines) else "reading the measurements failed"
    shown = "\n".join([*lines[:at], *lines[at + 1 :]][-25:])
    return OcclumStepError(
        f"{said} for {address}, after `occlum build` had signed the enclave. Its output ends with:\n{shown}\n"
        "See docs/occlum-toolchain.md#troubleshooting for the message -> field table."
    )


@rule(desc="Creating the Occlum instance skeleton", level=LogLevel.DEBUG)
async def occlum_new(request: OcclumSkeletonRequest, python: ToolPython, step_env: OcclumStepEnv) -> OcclumSkeleton:
    tool = await create_digest(CreateDigest(tool_files(SKELETON_TOOL)))
    argv = [
        python.path,
        tool_path(SKELETON_TOOL),
        "--occlum",
        request.toolchain.occlum,
        "--install-dir",
        request.toolchain.install_dir,
        "--out",
        INSTANCE,
    ]
    for lib in request.runtime_libs:
        argv += ["--lib", lib]
    result = await execute_process(
        Process(
            argv=argv,
            input_digest=tool,
            output_directories=(INSTANCE,),
            env=_env(step_env, request.toolchain, request.nonce),
            description=f"occlum new (Occlum {request.toolchain.release})",
            level=LogLevel.INFO,
            remote_cache_speculation_delay_millis=CACHE_FIRST_MILLIS,
        ),
    )
    if result.exit_code != 0:
        raise OcclumStepError(tool_error(result))
    return OcclumSkeleton(result.output_digest)


get_skeleton = rule_call(occlum_new)


@rule(desc="Building the Occlum enclave", level=LogLevel.DEBUG)
async def occlum_build(request: OcclumBuildRequest, step_env: OcclumStepEnv, python: ToolPython) -> BuiltOcclumInstance:
    # 1. Merge skeleton + staged instance: digest operations only. The staged Occlum.json replaces
    # the template one; any other path claimed by both is a collision, named with a fix.
    skeleton_wo_config = await digest_subset_to_digest(
        DigestSubset(request.skeleton.digest, PathGlobs(["**", f"!{INSTANCE}/Occlum.json"]))
    )
    staged = await add_prefix(AddPrefix(request.staged, INSTANCE))
    skel_snap, staged_snap = await concurrently(digest_to_snapshot(skeleton_wo_config), digest_to_snapshot(staged))
    clashes = sorted(set(skel_snap.files) & set(staged_snap.files))
    if clashes:
        shown = ", ".join(c[len(INSTANCE) + len("/image") :] for c in clashes[:10])
        raise OcclumStepError(
            f"The image of {request.address} puts files where `occlum new` (or `[occlum].runtime_libs`) "
            f"already has them: {shown}. Move them with the `files` field, or drop the library from "
            "`[occlum].runtime_libs`."
        )
    tools = {f.path: f for t in (BUILD_AND_PACKAGE, PACKAGE_TOOL, GUARDED_RUN) for f in tool_files(t)}
    merged, tool = await concurrently(
        merge_digests(MergeDigests([skeleton_wo_config, staged])), create_digest(CreateDigest(tools.values()))
    )
    image = await digest_subset_to_digest(DigestSubset(merged, PathGlobs([f"{INSTANCE}/image/**"])))

    # 2. `occlum build` (toolchain/build_and_package.py), and for `pants package` the package in
    # the same sandbox. The key is read by the CLI from its path; only its MRSIGNER is in the key.
    build = [request.toolchain.occlum, "build", "--sgx-mode", request.sgx_mode]
    if request.sign_key:
        build += ["--sign-key", request.sign_key]
    if request.sign_tool:
        build += ["--sign-tool", request.sign_tool]
    argv = [python.path, tool_path(BUILD_AND_PACKAGE), "--instance", INSTANCE, "--release", request.toolchain.release]
    description = f"occlum build {request.address} ({request.sgx_mode}, Occlum {request.toolchain.release})"
    package = request.package
    if package is None:
        # The whole built instance, for `pants run`. Named outputs, not ".": a "." output
        # directory does not survive a REAPI cache round trip in Pants 2.17 (the dotfiles went
        # missing). Paths a release lacks are just empty.
        outputs: dict = dict(
            output_directories=tuple(f"{INSTANCE}/{d}" for d in INSTANCE_DIRS),
            output_files=tuple(f"{INSTANCE}/{f}" for f in INSTANCE_FILES),
        )
    else:
        # Only the tarball, the signed enclave and the measurements leave the sandbox: as two
        # steps, Pants would store the built instance (a protected copy of the whole image) and
        # write it out again for the package step.
        argv += ["--name", package.name, "--segment-cache", SEGMENT_CACHE, *(["--debug"] if package.debug else [])]
        # The measurements, read beside the package (before 0.29.1 there is no `occlum print`:
        # sgx_sign dumps the SIGSTRUCT, as its docs do).
        tc = request.toolchain
        argv += ["--print-with", tc.occlum] if has_print(tc.release) else ["--dump-with", tc.sgx_sign]
        # The package deflates on one thread per core of the machine it runs on (its bytes do
        # not depend on how many). Not Pants' `{pants_concurrency}`: Pants' bounded runner may
        # cancel a step that asks for it and start it again with another count when a step
        # starts or ends beside it in its first 200 ms, and here that would re-run the build.
        description += ", then its package"
        outputs = dict(
            output_files=(f"{package.name}.tar.gz", SIGNED),
            output_directories=(MEASURED,),
            # The package's bytes are the same with or without the cache (a kept segment is the
            # file's deflated bytes, checked against the sha256 its writer recorded).
            append_only_caches={SEGMENT_CACHE_NAME: SEGMENT_CACHE},
        )
    result = await execute_process(
        Process(
            argv=(*argv, "--", *build),
            input_digest=await merge_digests(MergeDigests([merged, tool])),
            env=_env(step_env, request.toolchain, request.nonce, __OCCLUM_MRSIGNER=request.mrsigner),
            description=description,
            level=LogLevel.INFO,
            remote_cache_speculation_delay_millis=CACHE_FIRST_MILLIS,
            **outputs,
        ),
    )
    if package is not None and result.exit_code == PACKAGE_FAILED:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        said = next((line for line in reversed(lines) if line.startswith("error: ")), lines[-1] if lines else "")
        raise OcclumStepError(f"Packaging {request.address} failed: {said.removeprefix('error: ')}")
    if package is not None and result.exit_code == MEASURE_FAILED:
        raise measure_failure(request.address, result.stderr)
    if result.exit_code != 0:
        raise _failure(
            "occlum build",
            request.address,
            result,
            "See docs/occlum-toolchain.md#troubleshooting for the message -> field table.",
        )
    if package is None:
        return BuiltOcclumInstance(result.output_digest, request.toolchain, image)
    tarball = f"{package.name}.tar.gz"
    built, tar, measured = await concurrently(
        digest_subset_to_digest(DigestSubset(result.output_digest, PathGlobs([f"{INSTANCE}/**"]))),
        digest_subset_to_digest(DigestSubset(result.output_digest, PathGlobs([tarball]))),
        digest_subset_to_digest(DigestSubset(result.output_digest, PathGlobs([f"{MEASURED}/**"]))),
    )
    return BuiltOcclumInstance(built, request.toolchain, image, tar, measured)


run_occlum_build = rule_call(occlum_build)
run_occlum_build_in = rule_call_in_environment(occlum_build)


@rule(desc="Reading the enclave measurements", level=LogLevel.DEBUG)
async def occlum_measurements(built: BuiltOcclumInstance) -> OcclumMeasurements:
    """MRENCLAVE and MRSIGNER, as the build step's measurement tool printed them."""
    if built.measured is None:
        raise OcclumStepError("The measurements are read in the package's build step; this build had none.")
    contents = {os.path.basename(fc.path): fc.content for fc in await get_digest_contents(built.measured)}
    try:
        if has_print(built.toolchain.release):
            return OcclumMeasurements(
                parse_print_output(contents.get("mrenclave", b"").decode("utf-8", "replace")),
                parse_print_output(contents.get("mrsigner", b"").decode("utf-8", "replace")),
            )
        mrenclave, mrsigner = parse_sgx_sign_dump(contents.get("dump.txt", b"").decode("utf-8", "replace"))
        return OcclumMeasurements(mrenclave, mrsigner)
    except MeasurementParseError as e:
        raise OcclumStepError(f"Cannot read the measurements of the built enclave: {e}") from e


get_measurements = rule_call(occlum_measurements)


def rules():
    return collect_rules()
