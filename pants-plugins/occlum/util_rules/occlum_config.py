"""Generate an image's `Occlum.json` for the configured release and check it before any step runs."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any, Optional

from pants.engine.addresses import Address
from pants.engine.fs import CreateDigest, Digest, FileContent
from pants.engine.rules import collect_rules, rule
from pants.util.logging import LogLevel

from occlum.config.model import LIMITS, Mount, OcclumConfigInputs, render_occlum_json
from occlum.config.releases import SUPPORTED_RELEASES, UnknownReleaseError, honours_mounts, normalize_release
from occlum.config.validation import validate_config
from occlum.pants_compat import create_digest, rule_call

# Which BUILD field or option produced each part of Occlum.json, so errors point at the knob.
_FIELD_FOR_PATH = (
    *((f"$.{limit.key}", limit.name) for limit in LIMITS),
    ("$.metadata.debuggable", "debuggable"),
    ("$.metadata.product_id", "product_id"),
    ("$.metadata.version_number", "version_number"),
    ("$.env.default", "env"),
    ("$.env.untrusted", "untrusted_env"),
    ("$.entry_points", "jdk_dir"),
    ("$.mount", "mounts"),
)


class OcclumConfigError(Exception):
    pass


@dataclass(frozen=True)
class OcclumConfigRequest:
    address: Address
    release: str
    inputs: OcclumConfigInputs


@dataclass(frozen=True)
class OcclumConfig:
    release: str
    content: bytes  # the Occlum.json bytes, canonical (sorted keys would reorder the template)
    digest: Digest  # `Occlum.json` at the root


def field_for_path(path: str) -> str:
    for prefix, alias in _FIELD_FOR_PATH:
        if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "["):
            return f"the `{alias}` field"
    return "`[occlum].version`"


def check_release(release: str) -> str:
    try:
        return normalize_release(release)
    except UnknownReleaseError:
        guess = suggest_release(release)
        hint = f" Did you mean {guess}?" if guess else ""
        example = guess or SUPPORTED_RELEASES[-1]
        raise OcclumConfigError(
            f"The option `[occlum].version` is {release!r}, which is not a supported Occlum release.{hint} "
            f"Supported: {', '.join(SUPPORTED_RELEASES)}. Set it in pants.toml under `[occlum]`: "
            f'version = "{example}".'
        ) from None


def suggest_release(release: str) -> Optional[str]:
    """The supported release a mistyped one most likely means ("0.31" -> "0.31.0")."""
    text = str(release).strip().lstrip("vV")
    prefixed = [r for r in SUPPORTED_RELEASES if r.startswith(text + ".")]
    if prefixed:
        return prefixed[-1]
    close = difflib.get_close_matches(text, SUPPORTED_RELEASES, n=1, cutoff=0.8)
    return close[0] if close else None


def checked_occlum_json(address: Address, release_option: str, inputs: OcclumConfigInputs) -> tuple[str, dict]:
    """(release, Occlum.json) for an image, refused with its fields named as `package` would refuse
    it. Pure, so `enclave-memory` runs the same checks without a JDK or a toolchain."""
    release = check_release(release_option)
    if inputs.extra_mounts and not honours_mounts(release):
        raise OcclumConfigError(
            f"The `mounts` field in target {address} asks for extra mounts, but Occlum "
            f"{release} ignores the `mount` list (mounts are honoured from 0.21.0). Remove "
            "`mounts`, or set `[occlum].version` to 0.21.0 or later."
        )
    try:
        doc = render_occlum_json(release, inputs)
    except ValueError as e:  # includes UnsupportedFeatureError: a release lacks what was asked for
        raise OcclumConfigError(f"Cannot generate Occlum.json for {address} (Occlum {release}): {e}") from None
    problems = validate_config(release, doc)
    if problems:
        lines = "\n".join(f"  - {field_for_path(p.path)}: {p}" for p in problems)
        raise OcclumConfigError(
            f"The Occlum.json generated for {address} is not valid for Occlum {release}:\n"
            f"{lines}\nChange the named field(s) of {address}."
        )
    return release, doc


def config_inputs(address: Address, **values: Any) -> OcclumConfigInputs:
    """OcclumConfigInputs, with a combination the fields cannot catch alone (a mount's cache_size above
    the kernel heap, a maximum below its size) refused with the target named."""
    try:
        return OcclumConfigInputs(**values)
    except ValueError as e:
        raise OcclumConfigError(
            f"The fields of {address} do not fit together: {e}. Change one of the named fields."
        ) from None


@rule(desc="Generating Occlum.json", level=LogLevel.DEBUG)
async def generate_occlum_config(request: OcclumConfigRequest) -> OcclumConfig:
    release, doc = checked_occlum_json(request.address, request.release, request.inputs)
    content = (json.dumps(doc, indent=4) + "\n").encode()
    digest = await create_digest(CreateDigest([FileContent("Occlum.json", content)]))
    return OcclumConfig(release, content, digest)


get_occlum_config = rule_call(generate_occlum_config)


__all__ = ["Mount", "OcclumConfig", "OcclumConfigError", "OcclumConfigRequest"]


def rules():
    return collect_rules()
