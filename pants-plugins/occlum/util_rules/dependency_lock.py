"""Reading an image's `dependency_lock` (the pure parsing and checking: occlum/jar/dependency_lock.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from pants.engine.addresses import Address
from pants.engine.fs import FileEntry
from pants.engine.rules import collect_rules, rule
from pants.engine.target import HydrateSourcesRequest
from pants.util.frozendict import FrozenDict
from pants.util.logging import LogLevel

from occlum.jar.dependency_lock import DependencyLockError, check_lock_size, parse_lock
from occlum.pants_compat import get_digest_contents, get_digest_entries, hydrate_sources, rule_call
from occlum.target_types import OcclumJavaImageDependencyLockField


class DependencyLockFieldError(Exception):
    """The `dependency_lock` file cannot be read as a lock; the message says why and the fix."""


@dataclass(frozen=True)
class DependencyLockRequest:
    address: Address
    field: OcclumJavaImageDependencyLockField


@dataclass(frozen=True)
class PinnedDependencies:
    path: Optional[str]  # the lock file, None without one
    pins: FrozenDict[str, str]  # jar name (or entry path) -> sha256


@rule(desc="Reading the dependency lock", level=LogLevel.DEBUG)
async def read_dependency_lock(request: DependencyLockRequest) -> PinnedDependencies:
    if request.field.value is None:
        return PinnedDependencies(None, FrozenDict())
    hydrated = await hydrate_sources(HydrateSourcesRequest(request.field))
    files = [e for e in await get_digest_entries(hydrated.snapshot.digest) if isinstance(e, FileEntry)]
    if len(files) != 1:
        raise DependencyLockFieldError(
            f"The `dependency_lock` field of {request.address} is {request.field.value!r}, but no such file is in "
            f"{request.address.spec_path or 'the build root'}/. Write the lock there (`sha256sum *.jar` in the "
            "unpacked jar's BOOT-INF/lib/, as docs/spring-boot.md shows), or correct the path."
        )
    entry = files[0]
    where = f"The `dependency_lock` of {request.address} ({entry.path})"
    try:
        check_lock_size(entry.file_digest.serialized_bytes_length, where)  # before the bytes are read
        contents = await get_digest_contents(hydrated.snapshot.digest)
        pins = parse_lock(contents[0].content, where)
    except DependencyLockError as e:
        raise DependencyLockFieldError(str(e)) from None
    return PinnedDependencies(entry.path, FrozenDict(pins))


get_pinned_dependencies = rule_call(read_dependency_lock)


def rules():
    return collect_rules()
