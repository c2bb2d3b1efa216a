"""Resolve an image's `files` field: each enclave path gets exactly one file from its target."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from pants.build_graph.address import ResolveError
from pants.core.target_types import FileSourceField
from pants.engine.addresses import Address, Addresses, UnparsedAddressInputs
from pants.engine.fs import CreateDigest, FileContent
from pants.engine.rules import collect_rules, rule
from pants.engine.target import HydrateSourcesRequest, SourcesField, Target
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from occlum.pants_compat import (
    concurrently,
    create_digest,
    get_digest_contents,
    hydrate_sources,
    resolve_targets,
    resolve_unparsed_address_inputs,
    rule_call,
)
from occlum.target_types import unresolved_address
from occlum.util_rules.image_layout import ImagePart


class ImageFilesError(Exception):
    pass


@dataclass(frozen=True)
class ImageFilesRequest:
    address: Address
    mapping: FrozenDict[str, str]  # enclave path -> target address spec


@dataclass(frozen=True)
class ImageFiles:
    parts: tuple[ImagePart, ...]


def folder_clashes(paths: list[str]) -> list[str]:
    """Entries whose enclave path is a folder of another entry's ("/etc/a" and "/etc/a/b"): one
    digest cannot hold both. Linear: each path's parents are looked up in a set."""
    keys = set(paths)
    clashes = []
    for path in paths:
        parent = posixpath.dirname(path)
        while parent != "/":
            if parent in keys:
                clashes.append(f"{parent!r} is a file, but {path!r} puts a file under it")
                break
            parent = posixpath.dirname(parent)
    return clashes


async def first_unresolved_entry(address: Address, items: list[tuple[str, str]]) -> str:
    """After all of a `files` field's addresses failed to resolve together, resolve them one by one
    to name the bad entry with its enclave path; the message for it. Shared with dependency inference."""
    origin = f"the `files` field of {address}"
    for path, spec in items:
        try:
            await resolve_unparsed_address_inputs(
                UnparsedAddressInputs([spec], owning_address=address, description_of_origin=origin)
            )
        except ResolveError:
            return unresolved_address("files", address, spec, f"a `file` target for {path}")
    return f"The `files` field of {address} names an address that does not resolve."


@rule(desc="Collecting extra image files", level=LogLevel.DEBUG)
async def resolve_image_files(request: ImageFilesRequest) -> ImageFiles:
    # The cost is linear in the entries: one resolution of all the addresses, one hydration per
    # distinct target, and one digest for all the files (a digest per entry, merged, grew worse
    # than linearly: 8,000 entries took 73 s).
    items = sorted(request.mapping.items())
    if not items:
        return ImageFiles(())
    clashes = folder_clashes([path for path, _ in items])
    if clashes:
        raise ImageFilesError(
            f"The `files` field of {request.address} uses a path both as a file and as a folder: "
            + "; ".join(clashes[:5])
            + (f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else "")
            + ". Move one of the files."
        )
    specs = sorted({spec for _, spec in items})
    try:
        addresses = await resolve_unparsed_address_inputs(
            UnparsedAddressInputs(
                specs, owning_address=request.address, description_of_origin=f"the `files` field of {request.address}"
            )
        )
    except ResolveError:
        raise ImageFilesError(await first_unresolved_entry(request.address, items)) from None
    # Addresses come back in the order of the specs given.
    by_spec = dict(zip(specs, addresses))
    distinct = sorted(set(addresses))
    # One resolution for all: on Pants 2.17 every `Addresses` value hashes alike, so a request per
    # address made the engine compare each with all the others (quadratic).
    wanted = set(distinct)
    generated: dict[Address, list[Target]] = {}
    for tgt in await resolve_targets(Addresses(distinct)):
        a = tgt.address
        owner = a if a in wanted else Address(a.spec_path, target_name=a.target_name)
        generated.setdefault(owner, []).append(tgt)
    for path, spec in items:
        made = generated.get(by_spec[spec], [])
        if len(made) != 1:
            raise ImageFilesError(
                f"The `files` field of {request.address} maps {path!r} to {by_spec[spec]}, which "
                f"yields {len(made)} targets; it must yield exactly one file. Point it at a single `file` target."
            )
    target_of = {a: generated[a][0] for a in distinct}
    for path, spec in items:
        tgt = target_of[by_spec[spec]]
        if not tgt.has_field(SourcesField):
            raise ImageFilesError(
                f"The `files` field of {request.address} maps {path!r} to {tgt.address}, a "
                f"`{tgt.alias}`, which holds no files. Point it at a `file` target."
            )
    hydrated = await concurrently(
        hydrate_sources(
            HydrateSourcesRequest(
                target_of[a][SourcesField], for_sources_types=(FileSourceField,), enable_codegen=True
            ),
        )
        for a in distinct
    )
    contents = await concurrently(get_digest_contents(h.snapshot.digest) for h in hydrated)
    content_of = dict(zip(distinct, contents))
    created = []
    origins = {}
    for path, spec in items:
        address = by_spec[spec]
        content = content_of[address]
        if len(content) != 1:
            raise ImageFilesError(
                f"The `files` field of {request.address} maps {path!r} to {address}, which "
                f"holds {len(content)} files ({', '.join(c.path for c in content) or 'none'}); it "
                "must hold exactly one. Point it at a single `file` target."
            )
        # Re-created under the enclave path: the image path, not the repo path, decides the name.
        rel = path.lstrip("/")
        created.append(FileContent(rel, content[0].content, content[0].is_executable))
        origins[rel] = f"`files` entry {path!r} ({address})"
    digest = await create_digest(CreateDigest(created))
    return ImageFiles(
        (
            ImagePart(
                digest,
                "/",
                f"the `files` field of {request.address}",
                f"map the file to a path of fewer components in the `files` field of {request.address}",
                FrozenDict(origins),
            ),
        )
    )


get_image_files = rule_call(resolve_image_files)


def rules():
    return collect_rules()
