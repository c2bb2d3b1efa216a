"""Turn an image's `jar` field into exactly one executable jar, inspected."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from pants.build_graph.address import ResolveError
from pants.core.goals.package import EnvironmentAwarePackageRequest, PackageFieldSet
from pants.core.target_types import FileSourceField
from pants.engine.addresses import Address, UnparsedAddressInputs
from pants.engine.fs import Digest, DigestSubset, FileEntry, PathGlobs, RemovePrefix
from pants.engine.rules import collect_rules, rule
from pants.engine.target import (
    FieldSetsPerTargetRequest,
    HydrateSourcesRequest,
    SourcesField,
)
from pants.util.logging import LogLevel

from occlum.jar import inspect_jar as jar_inspection
from occlum.jar.inspect_jar import JarError, JarInfo, inspect_jar
from occlum.pants_compat import (
    concurrently,
    digest_subset_to_digest,
    digest_to_snapshot,
    environment_aware_package,
    find_valid_field_sets,
    get_digest_contents,
    get_digest_entries,
    hydrate_sources,
    remove_prefix,
    resolve_targets,
    resolve_unexpanded_targets,
    resolve_unparsed_address_inputs,
    rule_call,
)
from occlum.target_types import AddressFieldError, OcclumJavaImageJarField, unresolved_address


class ServiceJarError(Exception):
    """The `jar` field does not lead to exactly one executable jar."""


@dataclass(frozen=True)
class ServiceJarRequest:
    image_address: Address
    jar_field: UnparsedAddressInputs


@dataclass(frozen=True)
class ServiceJar:
    """The jar alone, at the digest root under its own file name."""

    digest: Digest
    name: str
    source: str  # where it came from, for messages and the summary
    info: JarInfo


@rule(desc="Finding the service jar", level=LogLevel.DEBUG)
async def find_service_jar(request: ServiceJarRequest) -> ServiceJar:
    # Name the target as written (a `files` generator, not its first generated file), but look
    # at every target it expands to: a generator's files are all candidates.
    try:
        addresses = await resolve_unparsed_address_inputs(request.jar_field)
    except ResolveError:
        value = request.jar_field.values[0] if request.jar_field.values else ""
        raise AddressFieldError(
            unresolved_address("jar", request.image_address, value, OcclumJavaImageJarField.expected)
        ) from None
    named, targets = await concurrently(resolve_unexpanded_targets(addresses), resolve_targets(addresses))
    tgt = named[0]
    where = f"The `jar` field of {request.image_address} names {tgt.address} (a `{tgt.alias}`)"

    per_target = await find_valid_field_sets(FieldSetsPerTargetRequest(PackageFieldSet, targets))
    to_hydrate = [t for t, fss in zip(targets, per_target.collection) if not fss and t.has_field(SourcesField)]
    if len(to_hydrate) + sum(1 for fss in per_target.collection if fss) < len(targets):
        raise ServiceJarError(
            f"{where}, which can neither be packaged nor holds files. Use a `file`, `deploy_jar`, "
            "`archive`, `experimental_shell_command` or `adhoc_tool` target that yields one .jar."
        )
    built = await concurrently(
        environment_aware_package(EnvironmentAwarePackageRequest(fs)) for fs in per_target.field_sets
    )
    hydrated = await concurrently(
        hydrate_sources(
            HydrateSourcesRequest(t[SourcesField], for_sources_types=(FileSourceField,), enable_codegen=True),
        )
        for t in to_hydrate
    )
    digests = [b.digest for b in built] + [h.snapshot.digest for h in hydrated]
    how = "packaged" if not hydrated else "generated or listed" if not built else "packaged, generated or listed"

    snapshots = await concurrently(digest_to_snapshot(d) for d in digests)
    jars = sorted({(s, f) for s in snapshots for f in s.files if f.endswith(".jar")}, key=lambda t: t[1])
    if len(jars) != 1:
        found = sorted({f for s in snapshots for f in s.files})
        listing = ", ".join(found[:10]) + (" ..." if len(found) > 10 else "") if found else "no files"
        raise ServiceJarError(
            f"{where}, which {how} {len(jars)} `.jar` files, but the image needs exactly one. "
            f"Files found: {listing}. Point `jar` at a target that yields a single executable jar."
        )
    snapshot, path = jars[0]
    only = await digest_subset_to_digest(DigestSubset(snapshot.digest, PathGlobs([path])))
    parent = os.path.dirname(path)
    if parent:
        only = await remove_prefix(RemovePrefix(only, parent))
    name = os.path.basename(path)
    # Checked before the bytes are read: the jar is inspected in memory.
    size = sum(
        e.file_digest.serialized_bytes_length for e in await get_digest_entries(only) if isinstance(e, FileEntry)
    )
    if size > jar_inspection.MAX_JAR_BYTES:
        raise ServiceJarError(
            f"{where}, whose jar {path} is {size} bytes, more than the {jar_inspection.MAX_JAR_BYTES} bytes a "
            "service jar may be (a large Spring Boot jar is a few hundred MB). Check that it names the service's "
            "jar, and move large data out of the jar into the `files` field."
        )
    contents = await get_digest_contents(only)
    try:
        info = dataclasses.replace(inspect_jar(contents[0].content, path), jar_name=name)
    except JarError as e:
        raise ServiceJarError(f"{where}: {e}") from e
    return ServiceJar(only, name, f"{tgt.address} ({path})", info)


get_service_jar = rule_call(find_service_jar)


def rules():
    return collect_rules()
