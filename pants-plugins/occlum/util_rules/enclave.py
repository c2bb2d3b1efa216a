"""From a staged instance to a built, signed enclave: the checks that must pass before any step runs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from pants.base.build_root import BuildRoot
from pants.engine.addresses import Address
from pants.engine.environment import EnvironmentName
from pants.engine.fs import Digest
from pants.engine.internals.native_engine import ProcessExecutionEnvironment
from pants.engine.rules import collect_rules, rule
from pants.util.logging import LogLevel
from pants.util.strutil import bullet_list

from occlum.config.releases import has_package_debug, normalize_release
from occlum.pants_compat import determine_local_environment, rule_call, rule_call_in_environment
from occlum.subsystems.occlum import OcclumSubsystem, SgxMode
from occlum.util_rules.occlum_steps import (
    BuiltOcclumInstance,
    OcclumBuildRequest,
    OcclumSkeletonRequest,
    OcclumStepError,
    PackageSpec,
    get_skeleton,
    run_occlum_build,
    run_occlum_build_in,
)
from occlum.util_rules.occlum_toolchain import (
    OcclumToolchain,
    OcclumToolchainError,
    SigningKeyRequest,
    get_maybe_toolchain,
    get_signing_key_identity,
    get_signing_key_identity_in,
)


@dataclass(frozen=True)
class EnclaveBuildRequest:
    address: Address
    staged: Digest
    debuggable: bool
    nonce: str = ""  # non-empty forces every toolchain step to run again (check-reproducible)
    goal: str = "package"  # the goal asking, for what to advise when the toolchain is missing
    package_name: Optional[str] = None  # also write <package_name>.tar.gz, in the build's sandbox


@dataclass(frozen=True)
class RequiredToolchainRequest:
    address: Address
    goal: str  # the goal that needs it: "package", "run" or "check-reproducible"


# What each goal does with the toolchain: only `package` can do without it (`stage_only`).
_NEEDS = {
    "package": "build the enclave",
    "run": "run the enclave (`pants run` starts it with `occlum run`, which also needs SGX in HW mode)",
    "check-reproducible": "check the enclave (`pants check-reproducible` re-runs every Occlum step)",
}


def toolchain_not_found(address: Address, searched: tuple[str, ...], goal: str) -> OcclumToolchainError:
    ways = [
        "run Pants inside Occlum's Docker image (occlum/occlum), where it is /opt/occlum/build/bin/occlum",
        "point `[occlum].executable_search_paths` at the folder holding `occlum`",
    ]
    if goal == "package":
        ways.append(
            'set `[occlum].stage_only = "yes"` (or "auto") to stop after the staged instance (Occlum.json + '
            "image/), which needs no toolchain"
        )
    return OcclumToolchainError(
        f"Cannot {_NEEDS.get(goal, goal)} for {address}: no `occlum` CLI was found. Searched:\n"
        f"{bullet_list(searched) if searched else '  (no paths)'}\n"
        "Ways out:\n" + "".join(f"  - {w};\n" for w in ways[:-1]) + f"  - {ways[-1]}."
    )


@rule(desc="Checking the Occlum toolchain", level=LogLevel.DEBUG)
async def required_toolchain(request: RequiredToolchainRequest, occlum: OcclumSubsystem) -> OcclumToolchain:
    maybe = await get_maybe_toolchain()
    if maybe.toolchain is None:
        raise toolchain_not_found(request.address, maybe.searched, request.goal)
    tc = maybe.toolchain
    wanted = normalize_release(occlum.version)
    if tc.release != wanted:
        raise OcclumToolchainError(
            f"The Occlum toolchain at {tc.install_dir} is release {tc.release} (its "
            f"include/occlum_version.h), but `[occlum].version` is {wanted}. The config schema and "
            f'the steps must match the toolchain: set `[occlum].version = "{tc.release}"`, or point '
            f"`[occlum].executable_search_paths` at an Occlum {wanted} install."
        )
    return tc


get_required_toolchain = rule_call(required_toolchain)
get_required_toolchain_in = rule_call_in_environment(required_toolchain)


@rule(desc="Building the enclave", level=LogLevel.DEBUG)
async def build_enclave(
    request: EnclaveBuildRequest,
    occlum: OcclumSubsystem,
    build_root: BuildRoot,
    process_env: ProcessExecutionEnvironment,
) -> BuiltOcclumInstance:
    key = occlum.sign_key
    tc = await get_required_toolchain(RequiredToolchainRequest(request.address, request.goal))
    sign_here: Optional[EnvironmentName] = None
    if key is not None:
        if not os.path.isabs(key):
            raise OcclumToolchainError(f"The option `[occlum].sign_key` must be an absolute path, but was {key!r}.")
        if os.path.commonpath([os.path.realpath(key), build_root.path]) == build_root.path:
            raise OcclumToolchainError(
                f"The option `[occlum].sign_key` points inside the repository ({key}). A private key "
                "there ends up in git and in Pants' file snapshots; keep it outside the repo (e.g. a "
                "CI secret file) and pass its absolute path."
            )
        if process_env.remote_execution:
            # `occlum build` signs, reading the key from its path where it runs: with remote
            # execution, a worker. The key stays here instead: the build step (and the probe that
            # reads the key's MRSIGNER) runs in the local environment; every other step on the workers.
            sign_here = (await determine_local_environment()).val
            here = await get_required_toolchain_in(RequiredToolchainRequest(request.address, request.goal), sign_here)
            if here.identity != tc.identity:
                raise OcclumToolchainError(
                    f"{request.address} is built on remote workers (environment `{process_env.name}`) but "
                    f"signed here with `[occlum].sign_key`, so this machine needs the workers' Occlum "
                    f"toolchain too. The workers have {tc.release} ({tc.fingerprint[:12]}, {tc.install_dir}); "
                    f"this machine has {here.release} ({here.fingerprint[:12]}, {here.install_dir}). Install "
                    "the same Occlum here (e.g. run the job in the workers' image)."
                )
            tc = here
            mrsigner = (await get_signing_key_identity_in(SigningKeyRequest(key), sign_here)).mrsigner
        else:
            mrsigner = (await get_signing_key_identity(SigningKeyRequest(key))).mrsigner
    else:
        if tc.template_mrsigner is None:
            raise OcclumToolchainError(
                f"No `[occlum].sign_key` is set and the toolchain at {tc.install_dir} has no "
                "etc/template/Enclave.pem to fall back on. Set `[occlum].sign_key`."
            )
        mrsigner = tc.template_mrsigner
    if not request.debuggable and mrsigner == tc.template_mrsigner:
        raise OcclumToolchainError(
            f"The `debuggable` field of {request.address} is False (a release enclave), but it would be "
            "signed with Occlum's template key (etc/template/Enclave.pem). That key is public: anyone "
            "can sign an enclave with the same MRSIGNER, so attestation by MRSIGNER proves nothing. "
            "Set `[occlum].sign_key` to your own RSA-3072 key (exponent 3) kept outside the repo, or "
            "set `debuggable=True` for a development build."
        )
    package = None
    if request.package_name is not None:
        # `occlum package` refuses debuggable and SIM instances without --debug, once it has the flag.
        sim = occlum.sgx_mode == SgxMode.SIM
        has_debug_flag = has_package_debug(tc.release)
        if sim and not has_debug_flag:
            raise OcclumStepError(
                f"Occlum {tc.release} cannot package a SIM instance (`occlum package` only "
                f"takes hardware-mode instances before 0.23.7), so {request.address} cannot be packaged "
                'with `[occlum].sgx_mode = "SIM"`. Use `sgx_mode = "HW"` (building needs no SGX) or '
                "`[occlum].stage_only`."
            )
        package = PackageSpec(request.package_name, (request.debuggable or sim) and has_debug_flag)
    skeleton = await get_skeleton(OcclumSkeletonRequest(tc, tuple(occlum.runtime_libs), request.nonce))
    build = OcclumBuildRequest(
        address=request.address,
        toolchain=tc,
        skeleton=skeleton,
        staged=request.staged,
        sgx_mode=occlum.sgx_mode.value,
        sign_key=key,
        sign_tool=occlum.sign_tool,
        mrsigner=mrsigner,
        nonce=request.nonce,
        package=package,
    )
    if sign_here is not None:
        return await run_occlum_build_in(build, sign_here)
    return await run_occlum_build(build)


get_built_enclave = rule_call(build_enclave)


def rules():
    return collect_rules()
