"""`dependency_lock`: the nested jars a service jar must hold, pinned by sha256.

The lock is `sha256sum` output, one `<sha256>  <jar name>` line per nested jar (Spring Boot's
`BOOT-INF/lib/`, a war's `WEB-INF/lib/`), as `cd BOOT-INF/lib && sha256sum *.jar` writes it. A name
without `/` is matched against each nested jar's file name; a name with `/` against its whole
entry path (for a war whose `lib/` and `lib-provided/` hold jars of the same name).

The check uses the hashes the jar's inspection already took (inspect_jar.NestedJar.sha256): it
costs no second read of the jar. Pure: no Pants imports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from occlum.jar.inspect_jar import MAX_NESTED_JARS, NestedJar

MAX_LOCK_BYTES = 1024 * 1024  # 2,000 lines of ~100 bytes fit 5 times over
# sha256sum's text ("  ") and binary (" *") modes; one space is taken too.
_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *]?(\S(?:.*\S)?)")


class DependencyLockError(Exception):
    """The lock cannot be read; the message names the line and the fix."""


@dataclass(frozen=True)
class LockMismatch:
    entry: str  # the nested jar's entry path, or the lock's name for one the jar lacks
    problem: str


def check_lock_size(size: int, where: str) -> None:
    """Refuse a lock too big to be one, before its bytes are read."""
    if size > MAX_LOCK_BYTES:
        raise DependencyLockError(
            f"{where} is {size} bytes, more than the {MAX_LOCK_BYTES} a lock of {MAX_NESTED_JARS} jars needs. "
            "Point `dependency_lock` at the `sha256sum` listing of the jar's nested jars."
        )


def parse_lock(data: bytes, where: str) -> dict[str, str]:
    """Name -> lowercase sha256 from the lock's bytes. `where` names the file in messages."""
    check_lock_size(len(data), where)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DependencyLockError(f"{where} is not UTF-8 text (byte {e.start}).") from None
    pinned: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.fullmatch(line.rstrip())
        if m is None:
            shown = line if len(line) <= 120 else line[:120] + "..."
            raise DependencyLockError(
                f"{where} line {number} is {shown!r}, not `<sha256>  <jar name>` (`sha256sum` output). "
                "Regenerate it with `sha256sum *.jar` in the jar's unpacked `BOOT-INF/lib/`."
            )
        digest, name = m.group(1).lower(), m.group(2)
        if pinned.get(name, digest) != digest:
            raise DependencyLockError(f"{where} pins {name} twice, with two different sha256 (line {number}).")
        pinned[name] = digest
        if len(pinned) > MAX_NESTED_JARS:
            raise DependencyLockError(f"{where} pins more than {MAX_NESTED_JARS} jars, the most a jar may nest.")
    return pinned


def check_lock(pinned: Mapping[str, str], nested: Sequence[NestedJar]) -> list[LockMismatch]:
    """What differs between the lock and the jar's nested jars; empty when they agree."""
    found: list[LockMismatch] = []
    matched: set[str] = set()
    for jar in nested:
        key = jar.path if jar.path in pinned else jar.path.rsplit("/", 1)[-1]
        want = pinned.get(key)
        if want is None:
            found.append(LockMismatch(jar.path, "in the jar, not in the lock"))
            continue
        matched.add(key)
        if jar.sha256 != want:
            found.append(LockMismatch(jar.path, f"sha256 {jar.sha256} in the jar, {want} in the lock"))
    for name in sorted(set(pinned) - matched):
        found.append(LockMismatch(name, "in the lock, not in the jar"))
    return found
