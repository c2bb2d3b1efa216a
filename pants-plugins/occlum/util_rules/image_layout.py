"""Lay out an Occlum image from its parts, with digest operations only (no process runs).

Each part is placed under `image/<its enclave path>`; two parts that claim the same enclave path
are an error that names both, like rules_pkg's "multiple sources map to the same destination".
"""

from __future__ import annotations

from dataclasses import dataclass

from pants.engine.addresses import Address
from pants.engine.fs import AddPrefix, Digest, MergeDigests, Snapshot
from pants.engine.rules import Get, MultiGet, collect_rules, rule
from pants.util.logging import LogLevel

IMAGE_DIR = "image"


class OcclumImageLayoutCollisionError(Exception):
    pass


@dataclass(frozen=True)
class ImagePart:
    """Files rooted at the digest root, to be placed at `enclave_dir` in the image."""

    digest: Digest
    enclave_dir: str  # absolute, e.g. "/usr/lib/spring"
    origin: str  # e.g. "the JDK of //svc:jdk", for collision messages


@dataclass(frozen=True)
class ImageLayoutRequest:
    address: Address
    parts: tuple[ImagePart, ...]


@dataclass(frozen=True)
class ImageLayout:
    """`image/...` for the instance folder, and how many files and bytes it holds."""

    digest: Digest
    files: int


def find_collisions(placed: list[tuple[str, frozenset[str]]]) -> list[str]:
    """Return messages for enclave paths claimed by more than one part (files or dir-vs-file)."""
    owner: dict[str, str] = {}
    problems = []
    for origin, paths in placed:
        for p in sorted(paths):
            if p in owner and owner[p] != origin:
                problems.append(f"{p}: from {owner[p]} and from {origin}")
            owner.setdefault(p, origin)
    return problems


@rule(desc="Laying out the Occlum image", level=LogLevel.DEBUG)
async def lay_out_image(request: ImageLayoutRequest) -> ImageLayout:
    prefixed = await MultiGet(
        Get(Digest, AddPrefix(part.digest, f"{IMAGE_DIR}{part.enclave_dir}")) for part in request.parts
    )
    snapshots = await MultiGet(Get(Snapshot, Digest, d) for d in prefixed)
    placed = []
    for part, snap in zip(request.parts, snapshots):
        files = frozenset((*snap.files, *getattr(snap, "symlinks", ())))
        placed.append((part.origin, files))
    # A file of one part where another part has a directory is a collision too.
    all_dirs = {d: part.origin for part, snap in zip(request.parts, snapshots) for d in snap.dirs}
    problems = find_collisions(placed)
    for origin, files in placed:
        problems += [f"{f}: a file from {origin}, but a folder from {all_dirs[f]}" for f in files if f in all_dirs]
    if problems:
        raise OcclumImageLayoutCollisionError(
            f"The image of {request.address} has {len(problems)} path(s) claimed twice:\n"
            + "\n".join(f"  - {p}" for p in problems[:20])
            + "\nMove one of them: change the path in `files`, or `jdk_dir` / `jar_dir`."
        )
    merged = await Get(Digest, MergeDigests(prefixed))
    return ImageLayout(merged, sum(len(f) for _, f in placed))


def rules():
    return collect_rules()
