"""Find the Occlum toolchain, read its release and identity, and the signing key's MRSIGNER.

The real CLI has no `--version`; the release comes from the install's `include/occlum_version.h`.
The probes read files outside the sandbox, so their results are never persisted: the toolchain's
identity is memoized for pantsd's lifetime (like Pants' binary discovery), the signing key's
MRSIGNER is re-read on every run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from pants.core.util_rules.system_binaries import BinaryPathRequest
from pants.engine.env_vars import EnvironmentVarsRequest
from pants.engine.fs import CreateDigest
from pants.engine.process import FallibleProcessResult, Process, ProcessCacheScope
from pants.engine.rules import collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from occlum.pants_compat import (
    create_digest,
    environment_vars_subset,
    execute_process,
    find_binary,
    rule_call,
    rule_call_in_environment,
    rule_call_without_request,
)
from occlum.subsystems.occlum import OcclumSubsystem
from occlum.util_rules.bundled_tools import tool_error, tool_files, tool_path
from occlum.util_rules.tool_python import ToolPython

PROBE_TOOL = "toolchain/probe_tool.py"


class OcclumToolchainError(Exception):
    pass


@dataclass(frozen=True)
class OcclumToolchain:
    occlum: str  # absolute path of the `occlum` CLI
    install_dir: str
    release: str
    fingerprint: str  # sha256 over the CLI, version header and LibOS/PAL binaries
    template_mrsigner: Optional[str]  # MRSIGNER of Occlum's public template key
    sgx_sign: str

    @property
    def identity(self) -> str:
        return f"{self.release}:{self.fingerprint}"


@dataclass(frozen=True)
class MaybeOcclumToolchain:
    toolchain: Optional[OcclumToolchain]
    searched: tuple[str, ...]


@dataclass(frozen=True)
class OcclumStepEnv:
    """The exact environment of every toolchain step: an allowlist, never the host's PATH/HOME."""

    env: FrozenDict[str, str]


@dataclass(frozen=True)
class SigningKeyRequest:
    path: str


@dataclass(frozen=True)
class SigningKeyIdentity:
    path: str
    mrsigner: str


async def _probe(
    python: ToolPython, args: tuple[str, ...], description: str, scope: ProcessCacheScope
) -> FallibleProcessResult:
    digest = await create_digest(CreateDigest(tool_files(PROBE_TOOL)))
    return await execute_process(
        Process(
            argv=(python.path, tool_path(PROBE_TOOL), *args),
            input_digest=digest,
            description=description,
            level=LogLevel.DEBUG,
            cache_scope=scope,
        ),
    )


@rule(desc="Finding the Occlum toolchain", level=LogLevel.DEBUG)
async def find_occlum_toolchain(occlum: OcclumSubsystem.EnvironmentAware, python: ToolPython) -> MaybeOcclumToolchain:
    searched = occlum.occlum_search_path
    paths = await find_binary(BinaryPathRequest(binary_name="occlum", search_path=searched))
    if not paths.first_path:
        return MaybeOcclumToolchain(None, searched)
    # Like Pants' own binary discovery (which found `occlum` above), the toolchain's identity is
    # memoized for pantsd's lifetime: re-hashing the LibOS on every run would cost each no-op
    # rebuild ~0.1 s. After upgrading Occlum, restart pantsd (docs/occlum-toolchain.md).
    result = await _probe(
        python,
        ("toolchain", "--occlum", paths.first_path.path),
        "Identify the Occlum toolchain",
        ProcessCacheScope.PER_RESTART_SUCCESSFUL,
    )
    if result.exit_code != 0:
        raise OcclumToolchainError(tool_error(result))
    raw = json.loads(result.stdout)
    return MaybeOcclumToolchain(
        OcclumToolchain(
            occlum=raw["occlum"],
            install_dir=raw["install_dir"],
            release=raw["release"],
            fingerprint=raw["fingerprint"],
            template_mrsigner=raw.get("template_mrsigner"),
            sgx_sign=raw["sgx_sign"],
        ),
        searched,
    )


get_maybe_toolchain = rule_call_without_request(find_occlum_toolchain)


@rule(desc="Reading the signing key's public identity", level=LogLevel.DEBUG)
async def signing_key_identity(request: SigningKeyRequest, python: ToolPython) -> SigningKeyIdentity:
    # Re-read on every run: a key replaced at the same path must change the build's cache key.
    result = await _probe(
        python, ("mrsigner", "--key", request.path), "Compute the signing key's MRSIGNER", ProcessCacheScope.PER_SESSION
    )
    if result.exit_code != 0:
        raise OcclumToolchainError(
            f"The option `[occlum].sign_key` points at {request.path!r}, which cannot be used: "
            f"{tool_error(result)}. Point it at an unencrypted RSA-3072 (exponent 3) PEM key outside the repo."
        )
    return SigningKeyIdentity(request.path, json.loads(result.stdout)["mrsigner"])


get_signing_key_identity = rule_call(signing_key_identity)
get_signing_key_identity_in = rule_call_in_environment(signing_key_identity)


@rule
async def occlum_step_env(occlum: OcclumSubsystem.EnvironmentAware) -> OcclumStepEnv:
    allowed = await environment_vars_subset(EnvironmentVarsRequest(occlum.env_vars))
    # A fixed PATH: the CLI is a bash script that needs coreutils, make, jq, objcopy, tar.
    return OcclumStepEnv(FrozenDict({"PATH": "/usr/local/bin:/usr/bin:/bin", **allowed}))


def rules():
    return collect_rules()
