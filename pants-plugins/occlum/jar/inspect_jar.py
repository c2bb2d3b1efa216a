"""Inspect an executable jar's bytes: main class, Spring Boot layout and the highest
class-file version, so a Java 17 jar is rejected before it meets a Java 11 enclave JDK.

Pure functions over bytes (the plugin passes the jar's content in-process); stdlib only.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from dataclasses import dataclass
from typing import Optional

CLASS_MAGIC = b"\xca\xfe\xba\xbe"
MANIFEST = "META-INF/MANIFEST.MF"
SPRING_LOADER_PREFIX = "org.springframework.boot.loader."


class JarError(Exception):
    """The jar cannot be used as an enclave entry point; the message is for users."""


@dataclass(frozen=True)
class JarInfo:
    main_class: str
    start_class: Optional[str]
    max_class_major: Optional[int]  # None when the jar holds no checked classes
    class_count: int
    is_spring_boot_fat_jar: bool
    jar_name: str = ""
    max_class_entry: Optional[str] = None  # one entry that has max_class_major


def parse_manifest(text: str) -> dict[str, str]:
    """Main section of a JAR manifest. Continuation lines start with exactly one space
    that is dropped (the spec wraps at 72 bytes, even mid-word)."""
    attrs: dict[str, str] = {}
    last: Optional[str] = None
    for line in re.split(r"\r\n|\r|\n", text):
        if line == "":
            if attrs:
                break  # a blank line ends the main section; per-entry sections follow
            continue
        if line.startswith(" ") and last is not None:
            attrs[last] += line[1:]
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue  # tolerate junk lines like the JDK's lenient readers do
        last = name.strip()
        attrs[last] = value[1:] if value.startswith(" ") else value
    return attrs


def _attr(attrs: dict[str, str], name: str) -> Optional[str]:
    # Manifest attribute names are case-insensitive.
    for key, value in attrs.items():
        if key.lower() == name.lower():
            return value.strip() or None
    return None


def class_major_to_java(major: int) -> int:
    """Class-file major version -> Java feature version (52 -> 8, 55 -> 11, 61 -> 17)."""
    if major < 45:
        raise ValueError(f"class-file major version {major} predates Java 1.0 (45)")
    return major - 44


def _is_checked_class(name: str) -> bool:
    # META-INF/versions/** are multi-release variants chosen at runtime per JDK, and
    # BOOT-INF/lib/** are nested jars; neither constrains the baseline JDK.
    if not name.endswith(".class") or name.startswith("META-INF/"):
        return False
    return name.startswith("BOOT-INF/classes/") or not name.startswith(("BOOT-INF/", "WEB-INF/"))


def _class_major(zf: zipfile.ZipFile, info: zipfile.ZipInfo, jar_name: str) -> int:
    with zf.open(info) as f:
        head = f.read(8)
    if len(head) < 8 or head[:4] != CLASS_MAGIC:
        raise JarError(
            f"{jar_name}: entry {info.filename} is not a valid class file (starts with {head[:4]!r}, expected magic "
            "CAFEBABE); the jar is corrupt. Rebuild it"
        )
    _minor, major = struct.unpack(">HH", head[4:8])
    return major


def _open_zip(content: bytes, jar_name: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise JarError(
            f"{jar_name} is not a jar (zip) file ({e}; {len(content)} bytes); point the target at the built "
            "executable jar"
        ) from e


def _read_manifest(zf: zipfile.ZipFile, jar_name: str) -> dict[str, str]:
    info = next((i for i in zf.infolist() if i.filename.upper() == MANIFEST), None)
    if info is None:
        raise JarError(
            f"{jar_name} has no META-INF/MANIFEST.MF, so it is not an executable jar; build it with "
            "`jar --create --main-class ...` or your build tool's Main-Class setting"
        )
    return parse_manifest(zf.read(info).decode("utf-8", "replace"))


def inspect_jar(content: bytes, jar_name: str) -> JarInfo:
    try:
        with _open_zip(content, jar_name) as zf:
            return _inspect(zf, jar_name)
    except JarError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as e:
        # e.g. a CRC error or an encrypted entry while reading a member.
        raise JarError(f"{jar_name} is a corrupt jar (zip) file: {e}; rebuild it") from e


def _inspect(zf: zipfile.ZipFile, jar_name: str) -> JarInfo:
    attrs = _read_manifest(zf, jar_name)
    main_class = _attr(attrs, "Main-Class")
    if main_class is None:
        raise JarError(
            f"{jar_name} is not an executable jar: its META-INF/MANIFEST.MF has no Main-Class; "
            "build it with `jar --main-class ...` / set Main-Class in your build tool"
        )
    start_class = _attr(attrs, "Start-Class")
    names = zf.namelist()
    is_boot = main_class.startswith(SPRING_LOADER_PREFIX) and any(n.startswith("BOOT-INF/") for n in names)
    max_major, max_entry, count = _scan_classes(zf, jar_name)
    return JarInfo(
        main_class=main_class,
        start_class=start_class,
        max_class_major=max_major,
        class_count=count,
        is_spring_boot_fat_jar=is_boot,
        jar_name=jar_name,
        max_class_entry=max_entry,
    )


def _scan_classes(zf: zipfile.ZipFile, jar_name: str) -> tuple[Optional[int], Optional[str], int]:
    max_major: Optional[int] = None
    max_entry: Optional[str] = None
    checked: list[zipfile.ZipInfo] = [i for i in zf.infolist() if _is_checked_class(i.filename)]
    for info in checked:
        major = _class_major(zf, info, jar_name)
        if max_major is None or major > max_major:
            max_major, max_entry = major, info.filename
    return max_major, max_entry, len(checked)


def check_runs_on(info: JarInfo, jdk_java_major: int, jdk_version: str) -> None:
    """Raise JarError if the jar's classes need a newer Java than the image's JDK."""
    if info.max_class_major is None:
        return
    needed = class_major_to_java(info.max_class_major)
    if needed <= jdk_java_major:
        return
    where = f" (e.g. {info.max_class_entry})" if info.max_class_entry else ""
    raise JarError(
        "{}: classes are compiled for Java {} (class-file major version {}){} but the "
        "image's JDK is Java {} (JAVA_VERSION={}); compile with `javac --release {}` or "
        "use a newer JDK".format(
            info.jar_name or "the jar",
            needed,
            info.max_class_major,
            where,
            jdk_java_major,
            jdk_version,
            jdk_java_major,
        )
    )
