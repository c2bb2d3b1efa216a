"""Fetch, verify, safely extract and validate the JDK of a `dragonwell_jdk` target.

Two Processes, each cached on its own inputs: the download (keyed by URLs + sha256) and the
extraction (keyed by the archive digest and the expected libc). Editing a service's jar touches
neither.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

from pants.engine.addresses import Address
from pants.engine.env_vars import EnvironmentVarsRequest
from pants.engine.fs import CreateDigest, Digest, DigestSubset, MergeDigests, PathGlobs, RemovePrefix
from pants.engine.platform import Platform
from pants.engine.process import Process
from pants.engine.rules import collect_rules, rule
from pants.engine.target import WrappedTargetRequest
from pants.util.logging import LogLevel
from pants.util.strutil import bullet_list

from occlum.pants_compat import (
    concurrently,
    create_digest,
    digest_subset_to_digest,
    environment_vars_subset,
    execute_process,
    get_digest_contents,
    merge_digests,
    remove_prefix,
    resolve_target,
    rule_call,
)
from occlum.subsystems.dragonwell import (
    DEFAULT_VERSION,
    NO_EDITION,
    DragonwellPin,
    DragonwellSubsystem,
    KnownVersionsError,
)
from occlum.target_types import (
    DragonwellEditionField,
    DragonwellJdkTarget,
    DragonwellLibcField,
    DragonwellSha256Field,
    DragonwellSizeField,
    DragonwellUrlField,
    DragonwellVersionField,
)
from occlum.util_rules.bundled_tools import CACHE_FIRST_MILLIS, tool_error, tool_files, tool_path
from occlum.util_rules.tool_python import ToolPython

FETCH_TOOL = "jdk/fetch_tool.py"
EXTRACT_TOOL = "jdk/extract_tool.py"


class DragonwellJdkError(Exception):
    """A JDK could not be resolved, fetched or validated; the message says why and what to do."""


@dataclass(frozen=True)
class DragonwellJdkRequest:
    address: Address
    description_of_origin: str


@dataclass(frozen=True)
class JdkInfo:
    java_version: str
    java_major: int
    libc: str
    interpreter: Optional[str]
    implementor: Optional[str]
    top_folder: str
    files: int


@dataclass(frozen=True)
class DownloadedDragonwellJdk:
    """The JDK's files at the digest root (`bin/java`, `lib/...`, `release`), validated."""

    address: Address
    pin: DragonwellPin
    digest: Digest
    info: JdkInfo


def resolve_pin(
    address: Address,
    *,
    version: Optional[str],
    edition: Optional[str],
    libc: str,
    url: Optional[str],
    sha256: Optional[str],
    size: Optional[int],
    pins: tuple[DragonwellPin, ...],
    platform: str,
) -> DragonwellPin:
    """Choose the build a target means, or explain what exists."""
    if url is not None and sha256 is not None:
        # The field's default names the known build, not an archive pinned by hand.
        described = version if version is not None and version != DEFAULT_VERSION else "custom"
        return DragonwellPin(described, edition or NO_EDITION, libc, platform, sha256, size, url)
    version = version or DEFAULT_VERSION
    same = [p for p in pins if p.version == version and p.libc == libc and p.platform == platform]
    if not same:
        known = [p for p in pins if p.platform == platform]
        raise DragonwellJdkError(
            f"The `dragonwell_jdk` target {address} asks for Dragonwell {version} ({libc}, "
            f"{platform}), which `[dragonwell].known_versions` does not pin. Known builds:\n"
            f"{bullet_list(sorted(p.describe() for p in known))}\n"
            "Pick one of these for `version`/`libc`, or pin the build on the target with `url` and "
            "`sha256` (or add it to `[dragonwell].known_versions`)."
        )
    editions = sorted(p.edition for p in same)
    if edition is None:
        chosen = next((p for p in same if p.edition in ("standard", NO_EDITION)), same[0])
        return chosen
    match = [p for p in same if p.edition == edition]
    if not match:
        has = ", ".join(e for e in editions if e != NO_EDITION) or "none (it predates editions)"
        raise DragonwellJdkError(
            f"The `edition` field in target {address} is {edition!r}, but Dragonwell {version} "
            f"({libc}) is pinned with editions: {has}. "
            + ("Remove `edition`." if editions == [NO_EDITION] else "Use one of those.")
        )
    return match[0]


def _naming_target(message: str, label: str, for_target: str) -> str:
    """A shared step's message, with the address of the target that asked put back in."""
    if label in message:
        return message.replace(label, for_target, 1)
    return f"{for_target}: {message}"


@rule(desc="Resolving a Dragonwell JDK", level=LogLevel.DEBUG)
async def resolve_dragonwell_jdk(
    request: DragonwellJdkRequest,
    dragonwell: DragonwellSubsystem,
    python: ToolPython,
    platform: Platform,
) -> DownloadedDragonwellJdk:
    wrapped = await resolve_target(
        WrappedTargetRequest(request.address, description_of_origin=request.description_of_origin)
    )
    tgt = wrapped.target
    if not isinstance(tgt, DragonwellJdkTarget):
        raise DragonwellJdkError(
            f"{request.description_of_origin} must name a `dragonwell_jdk` target, but "
            f"{tgt.address} is a `{tgt.alias}`. Point it at a dragonwell_jdk(...) target."
        )
    try:
        pins = dragonwell.pins()
        urls_for = dragonwell.candidate_urls  # checks `[dragonwell].mirrors` now, with the other options
        dragonwell.checked_mirrors()
    except KnownVersionsError as e:
        raise DragonwellJdkError(str(e)) from e
    pin = resolve_pin(
        tgt.address,
        version=tgt[DragonwellVersionField].value,
        edition=tgt[DragonwellEditionField].value,
        libc=tgt[DragonwellLibcField].value,
        url=tgt[DragonwellUrlField].value,
        sha256=tgt[DragonwellSha256Field].value,
        size=tgt[DragonwellSizeField].value,
        pins=pins,
        platform=platform.value,
    )
    # Nothing naming the target enters the steps' argv or env: that is their cache key, and every
    # target with this pin must share one download and one extraction per machine. The engine
    # ignores `description` when it dedupes processes, so descriptions may name the target.
    # A `url` pin is named by its archive: the target's own `version`/`edition` only describe it.
    from_target = tgt[DragonwellUrlField].value is not None
    label = f"Dragonwell {pin.filename}" if from_target else f"Dragonwell {pin.describe()}"
    for_target = f"{label} for {tgt.address}"

    # 1. Download and verify. Only env vars that are set are passed, so unset proxies do not
    # change the cache key.
    env = await environment_vars_subset(EnvironmentVarsRequest(tuple(dragonwell.fetch_env_vars)))
    fetch_tool, extract_tool = await concurrently(
        create_digest(CreateDigest(tool_files(FETCH_TOOL))), create_digest(CreateDigest(tool_files(EXTRACT_TOOL)))
    )
    archive_path = f"archive/{pin.filename}"
    fetch_argv = [
        python.path,
        tool_path(FETCH_TOOL),
        "--sha256",
        pin.sha256,
        "--out",
        archive_path,
        "--label",
        label,
    ]
    if pin.size is not None:
        fetch_argv += ["--size", str(pin.size)]
    fetched = await execute_process(
        Process(
            argv=(*fetch_argv, *urls_for(pin)),
            input_digest=fetch_tool,
            output_files=(archive_path,),
            env={**{k: v for k, v in env.items() if v}, **python.env},
            description=f"Download {for_target}",
            level=LogLevel.INFO,
            remote_cache_speculation_delay_millis=CACHE_FIRST_MILLIS,
        ),
    )
    if fetched.exit_code != 0:
        raise DragonwellJdkError(_naming_target(tool_error(fetched), label, for_target))

    # 2. Check every member, extract, validate bin/java, libjvm.so and `release`.
    extract_input = await merge_digests(MergeDigests([fetched.output_digest, extract_tool]))
    extracted = await execute_process(
        Process(
            argv=(
                python.path,
                tool_path(EXTRACT_TOOL),
                "--archive",
                archive_path,
                "--out-dir",
                "jdk",
                "--info-out",
                "jdk-info.json",
                "--expect-libc",
                pin.libc,
                "--label",
                label,
            ),
            input_digest=extract_input,
            env=python.env,
            output_directories=("jdk",),
            output_files=("jdk-info.json",),
            description=f"Extract and validate {for_target}",
            remote_cache_speculation_delay_millis=CACHE_FIRST_MILLIS,
            level=LogLevel.INFO,
        ),
    )
    if extracted.exit_code != 0:
        raise DragonwellJdkError(_naming_target(tool_error(extracted), label, for_target))

    info_digest, jdk_only = await concurrently(
        digest_subset_to_digest(DigestSubset(extracted.output_digest, PathGlobs(["jdk-info.json"]))),
        digest_subset_to_digest(DigestSubset(extracted.output_digest, PathGlobs(["jdk/**"]))),
    )
    jdk_digest = await remove_prefix(RemovePrefix(jdk_only, "jdk"))
    contents = await get_digest_contents(info_digest)
    raw = json.loads(contents[0].content)
    info = JdkInfo(
        java_version=raw["java_version"],
        java_major=int(raw["java_major"]),
        libc=raw["libc"],
        interpreter=raw.get("interpreter"),
        implementor=raw.get("implementor"),
        top_folder=raw["top_folder"],
        files=int(raw["files"]),
    )
    return DownloadedDragonwellJdk(tgt.address, pin, jdk_digest, info)


get_dragonwell_jdk = rule_call(resolve_dragonwell_jdk)


def rules():
    return collect_rules()
