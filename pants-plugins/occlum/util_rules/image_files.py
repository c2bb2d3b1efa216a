"""Resolve an image's `files` field: each enclave path gets exactly one file from its target."""

from __future__ import annotations

import os
from dataclasses import dataclass

from pants.build_graph.address import ResolveError
from pants.core.target_types import FileSourceField
from pants.engine.addresses import Address, UnparsedAddressInputs
from pants.engine.fs import CreateDigest, FileContent
from pants.engine.rules import collect_rules, rule
from pants.engine.target import HydrateSourcesRequest, SourcesField
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


@rule(desc="Collecting extra image files", level=LogLevel.DEBUG)
async def resolve_image_files(request: ImageFilesRequest) -> ImageFiles:
    items = sorted(request.mapping.items())
    if not items:
        return ImageFiles(())
    addresses = []
    for path, spec in items:  # one by one, so a bad address is named with its path
        try:
            addresses.append(
                await resolve_unparsed_address_inputs(
                    UnparsedAddressInputs(
                        [spec],
                        owning_address=request.address,
                        description_of_origin=f"the `files` field of {request.address} ({path!r})",
                    )
                )
            )
        except ResolveError:
            raise ImageFilesError(
                unresolved_address("files", request.address, spec, f"a `file` target for {path}")
            ) from None
    targets = await concurrently(resolve_targets(a) for a in addresses)
    for (path, _), tgts in zip(items, targets):
        if not tgts[0].has_field(SourcesField):
            raise ImageFilesError(
                f"The `files` field of {request.address} maps {path!r} to {tgts[0].address}, a "
                f"`{tgts[0].alias}`, which holds no files. Point it at a `file` target."
            )
    hydrated = await concurrently(
        hydrate_sources(
            HydrateSourcesRequest(t[0][SourcesField], for_sources_types=(FileSourceField,), enable_codegen=True),
        )
        for t in targets
    )
    contents = await concurrently(get_digest_contents(h.snapshot.digest) for h in hydrated)
    created = []
    for (path, _), tgts, content in zip(items, targets, contents):
        if len(content) != 1:
            raise ImageFilesError(
                f"The `files` field of {request.address} maps {path!r} to {tgts[0].address}, which "
                f"holds {len(content)} files ({', '.join(c.path for c in content) or 'none'}); it "
                "must hold exactly one. Point it at a single `file` target."
            )
        # Re-create under the enclave file name: the image path, not the repo path, decides it.
        fc = content[0]
        created.append((path, tgts[0].address, FileContent(os.path.basename(path), fc.content, fc.is_executable)))
    digests = await concurrently(create_digest(CreateDigest([fc])) for _, _, fc in created)
    return ImageFiles(
        tuple(
            ImagePart(d, os.path.dirname(path), f"`files` entry {path!r} ({addr})")
            for (path, addr, _), d in zip(created, digests)
        )
    )


get_image_files = rule_call(resolve_image_files)


def rules():
    return collect_rules()
