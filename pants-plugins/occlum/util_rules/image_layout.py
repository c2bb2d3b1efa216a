"""Lay out an Occlum image from its parts, with digest operations only (no process runs).

Each part is placed under `image/<its enclave path>`; two parts that claim the same enclave path
are an error that names both, like rules_pkg's "multiple sources map to the same destination".
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Optional

from pants.engine.addresses import Address
from pants.engine.fs import AddPrefix, Digest, DigestEntries, Directory, FileEntry, MergeDigests, SymlinkEntry
from pants.engine.rules import collect_rules, rule
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from occlum.image_paths import ENGINE_REASON, MAX_IMAGE_DEPTH, shown
from occlum.pants_compat import add_prefix, concurrently, get_digest_entries, merge_digests, rule_call

IMAGE_DIR = "image"


class OcclumImageLayoutCollisionError(Exception):
    pass


class OcclumImageTooDeepError(Exception):
    pass


@dataclass(frozen=True)
class ImagePart:
    """Files rooted at the digest root, to be placed at `enclave_dir` in the image."""

    digest: Digest
    enclave_dir: str  # absolute, e.g. "/usr/lib/spring", or "/" for files placed at their own paths
    origin: str  # e.g. "the JDK of //svc:jdk", for collision messages
    fix: str  # what shortens its paths, e.g. "set a `jdk_dir` of fewer components on //svc:enclave"
    # Per file, when the part gathers files of several origins (the `files` field): path under
    # `enclave_dir` -> origin.
    entry_origins: Optional[FrozenDict[str, str]] = None

    def origin_of(self, image_path: str) -> str:
        if self.entry_origins is None:
            return self.origin
        rel = image_path[len(self.prefix) + 1 :]
        return self.entry_origins.get(rel, self.origin)

    @property
    def prefix(self) -> str:
        return f"{IMAGE_DIR}{self.enclave_dir}".rstrip("/")


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


def too_deep(address: Address, part: ImagePart, paths: frozenset[str]) -> Optional[str]:
    """The message for the part's deepest path if it has more than MAX_IMAGE_DEPTH components."""
    if not paths:
        return None
    deepest = max(paths, key=lambda p: (p.count("/"), p))
    depth = deepest.count("/")  # "image/a/b" is the enclave path /a/b: two components
    if depth <= MAX_IMAGE_DEPTH:
        return None
    enclave_path = deepest[len(IMAGE_DIR) :]
    return (
        f"The image of {address} would hold {shown(enclave_path, 120)}, {depth} components deep, from "
        f"{part.origin_of(deepest)}; at most {MAX_IMAGE_DEPTH} are allowed in an image path ({ENGINE_REASON}). "
        f"Fix: {part.fix}."
    )


def _kinds(entries: DigestEntries) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(files, symlinks, directories) of a digest. A 2.17 Snapshot lists symlinks among its files,
    so only the entries tell a link from a file; they list only empty directories, so the others
    come from the paths' parents."""
    files = frozenset(e.path for e in entries if isinstance(e, FileEntry))
    links = frozenset(e.path for e in entries if isinstance(e, SymlinkEntry))
    dirs = {e.path for e in entries if isinstance(e, Directory)}
    for path in (*files, *links, *dirs):
        parent = posixpath.dirname(path)
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = posixpath.dirname(parent)
    return files, links, frozenset(dirs)


@rule(desc="Laying out the Occlum image", level=LogLevel.DEBUG)
async def lay_out_image(request: ImageLayoutRequest) -> ImageLayout:
    prefixed = await concurrently(add_prefix(AddPrefix(part.digest, part.prefix)) for part in request.parts)
    listed = await concurrently(get_digest_entries(d) for d in prefixed)
    kinds = [_kinds(entries) for entries in listed]
    for part, (files, links, _) in zip(request.parts, kinds):
        deep = too_deep(request.address, part, files | links)
        if deep:
            raise OcclumImageTooDeepError(deep)
    placed: list[tuple[str, frozenset[str]]] = []
    for part, (files, links, _) in zip(request.parts, kinds):
        if part.entry_origins is None:
            placed.append((part.origin, files | links))
        else:  # named file by file, so a collision says which entry
            placed.extend((part.origin_of(p), frozenset([p])) for p in sorted(files | links))
    problems = find_collisions(placed)
    # A file or link of one part where another part has a folder is a collision too, and so is a
    # folder of one part where another has a link (it would have to go through the link).
    all_dirs: dict[str, str] = {}
    for part, (files, links, dirs) in zip(request.parts, kinds):
        if part.entry_origins is None:
            all_dirs.update((d, part.origin) for d in dirs)
            continue
        for path in sorted(files | links):  # each folder named after the first entry under it
            parent = posixpath.dirname(path)
            while parent and parent not in all_dirs:
                all_dirs[parent] = part.origin_of(path)
                parent = posixpath.dirname(parent)
    for part, (files, links, _) in zip(request.parts, kinds):
        for kind, paths in (("a file", files), ("a symlink", links)):
            problems += [
                f"{p}: {kind} from {part.origin_of(p)}, but a folder from {all_dirs[p]}"
                for p in sorted(paths)
                if p in all_dirs and all_dirs[p] != part.origin_of(p)
            ]
    if problems:
        raise OcclumImageLayoutCollisionError(
            f"The image of {request.address} has {len(problems)} path(s) claimed twice:\n"
            + "\n".join(f"  - {p}" for p in problems[:20])
            + "\nMove one of them: change the path in `files`, or `jdk_dir` / `jar_dir`."
        )
    merged = await merge_digests(MergeDigests(prefixed))
    return ImageLayout(merged, sum(len(f) for _, f in placed))


get_image_layout = rule_call(lay_out_image)


def rules():
    return collect_rules()
