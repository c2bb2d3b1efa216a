"""Inspect an executable jar's bytes as the JVM will load it: its main class, the Spring Boot
layout, and the class-file version of every class the JDK would pick, so that a class compiled
for Java 17 is refused before it meets a Java 11 enclave JDK.

- A plain jar: its classes at the root. With `Multi-Release: true`, a class under
  `META-INF/versions/<N>/` replaces the root one on Java N and later; without it the JVM ignores
  `META-INF/versions/`.
- A Spring Boot jar (Main-Class a Boot launcher, `BOOT-INF/` present): the launcher at the root,
  the application under `BOOT-INF/classes/` (its `Start-Class` must be there), and each
  `BOOT-INF/lib/*.jar` loaded into the same JVM, so checked the same way. A Boot war's
  `WEB-INF/classes/` and `WEB-INF/lib*/*.jar` likewise.

Pure functions over bytes (the plugin passes the jar's content in-process); stdlib only. Every
read is bounded (docs/error-catalogue.md lists the limits): a hostile jar is refused, not read.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
import re
import struct
import threading
import zipfile
from dataclasses import dataclass
from typing import Optional

from occlum.jar.identity import JarIdentity, MavenCoordinates, identify

CLASS_MAGIC = b"\xca\xfe\xba\xbe"
MANIFEST = "META-INF/MANIFEST.MF"
SPRING_LOADER_PREFIX = "org.springframework.boot.loader."
_VERSIONED = re.compile(r"META-INF/versions/(\d+)/(.+)")
_APP_CLASSES = ("BOOT-INF/classes/", "WEB-INF/classes/")
_NESTED_LIBS = re.compile(r"(BOOT-INF/lib|WEB-INF/lib|WEB-INF/lib-provided)/[^/]+\.jar")
_POM_PROPERTIES = re.compile(r"META-INF/maven/[^/]+/[^/]+/pom\.properties")

# Bounds: a manifest is a few KB, a large Spring Boot service has ~30k classes in ~200 jars, and
# its fat jar is 50-300 MB. The whole jar is read into memory to be inspected.
MAX_JAR_BYTES = 1024 * 1024 * 1024
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_ENTRIES = 200_000
MAX_NESTED_JARS = 2_000
MAX_NESTED_JAR_BYTES = 256 * 1024 * 1024
MAX_POM_PROPERTIES_BYTES = 64 * 1024  # Maven writes a few hundred bytes
MAX_POM_PROPERTIES_PER_JAR = 256  # a shaded jar lists what it absorbed: a handful, rarely dozens


# What one nested jar's reading found, kept by its sha256 across inspections in the same process
# (pantsd): a jar change rebuilds the fat jar around mostly the same libraries, and reading every
# class header of a hundred of them is most of the inspection's time. Bounded by classes kept.
MAX_KEPT_CLASSES = 200_000
MAX_KEPT_JARS = 10_000
_kept: collections.OrderedDict = collections.OrderedDict()
_kept_classes = [0]
_kept_lock = threading.Lock()


def _kept_reading(key: tuple) -> Optional[tuple]:
    with _kept_lock:
        found = _kept.get(key)
        if found is not None:
            _kept.move_to_end(key)
        return found


def _keep_reading(key: tuple, value: tuple) -> None:
    classes = len(value[0]) if value[0] is not None else 0
    with _kept_lock:
        if key in _kept or classes > MAX_KEPT_CLASSES:
            return
        _kept[key] = value
        _kept_classes[0] += classes
        while _kept_classes[0] > MAX_KEPT_CLASSES or len(_kept) > MAX_KEPT_JARS:
            _, old = _kept.popitem(last=False)
            _kept_classes[0] -= len(old[0]) if old[0] is not None else 0


class JarError(Exception):
    """The jar cannot be used as an enclave entry point; the message is for users."""


@dataclass(frozen=True)
class ClassFile:
    path: str  # the class as the JVM names it: "com/example/Main.class"
    release: int  # 0 for the base entry, N for META-INF/versions/N/ of a multi-release jar
    major: int  # the class-file major version (55 = Java 11)
    entry: str  # the zip entry it was read from


@dataclass(frozen=True)
class JarUnit:
    """The classes of the jar itself, or of one nested jar, that one class loader sees."""

    where: str  # "app.jar" or "app.jar!/BOOT-INF/lib/dep.jar"
    classes: tuple[ClassFile, ...]

    def effective(self, java: int) -> list[ClassFile]:
        """The entry the JVM loads for each class on Java `java` (multi-release aware)."""
        chosen: dict[str, ClassFile] = {}
        for c in self.classes:
            if c.release <= java and (c.path not in chosen or c.release > chosen[c.path].release):
                chosen[c.path] = c
        return list(chosen.values())

    def has_class(self, path: str, java: Optional[int] = None) -> bool:
        return any(c.path == path and (java is None or c.release <= java) for c in self.classes)


@dataclass(frozen=True)
class NestedJar:
    """A jar inside a Spring Boot jar (or war), for the SBOM."""

    path: str  # the entry: "BOOT-INF/lib/dep-1.0.jar"
    sha256: str
    identity: JarIdentity

    @property
    def maven(self) -> Optional[MavenCoordinates]:
        return self.identity.maven


@dataclass(frozen=True)
class JarInfo:
    main_class: str
    start_class: Optional[str]
    max_class_major: Optional[int]  # the highest base class-file version of the jar's own classes
    class_count: int
    is_spring_boot_fat_jar: bool
    jar_name: str = ""
    max_class_entry: Optional[str] = None  # one entry that has max_class_major
    units: tuple[JarUnit, ...] = ()  # the jar's own classes first, then each nested jar
    sha256: str = ""
    maven: Optional[MavenCoordinates] = None  # the jar's own pom.properties, when it has exactly one
    nested: tuple[NestedJar, ...] = ()  # in entry order


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


def _class_path(name: str) -> str:
    return name.replace(".", "/") + ".class"


def _class_major(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> int:
    with zf.open(info) as f:
        head = f.read(8)
    if len(head) < 8 or head[:4] != CLASS_MAGIC:
        raise JarError(
            f"{where}: entry {info.filename} is not a valid class file (starts with {head[:4]!r}, expected magic "
            "CAFEBABE); the jar is corrupt. Rebuild it"
        )
    _minor, major = struct.unpack(">HH", head[4:8])
    return major


def _open_zip(content: bytes, where: str) -> zipfile.ZipFile:
    try:
        zf = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise JarError(
            f"{where} is not a jar (zip) file ({e}; {len(content)} bytes); point the target at the built executable jar"
        ) from e
    if len(zf.infolist()) > MAX_ENTRIES:
        raise JarError(
            f"{where} has {len(zf.infolist())} entries, more than the {MAX_ENTRIES} a service jar is allowed; "
            "check that the target names the service's jar"
        )
    return zf


def _read_manifest(zf: zipfile.ZipFile, where: str, required: bool = True) -> dict[str, str]:
    info = next((i for i in zf.infolist() if i.filename.upper() == MANIFEST), None)
    if info is None:
        if not required:
            return {}
        raise JarError(
            f"{where} has no META-INF/MANIFEST.MF, so it is not an executable jar; build it with "
            "`jar --create --main-class ...` or your build tool's Main-Class setting"
        )
    if info.file_size > MAX_MANIFEST_BYTES:
        raise JarError(
            f"{where}: its META-INF/MANIFEST.MF is {info.file_size} bytes, but a manifest may be at most "
            f"{MAX_MANIFEST_BYTES} bytes (they are a few KB); rebuild the jar"
        )
    return parse_manifest(zf.read(info).decode("utf-8", "replace"))


def _unit(zf: zipfile.ZipFile, where: str, roots: tuple[str, ...], multi_release: bool) -> JarUnit:
    """The classes under `roots` ("" = the jar root), with multi-release variants if enabled."""
    classes = []
    for info in zf.infolist():
        name = info.filename
        if not name.endswith(".class"):
            continue
        release = 0
        versioned = _VERSIONED.fullmatch(name)
        if versioned:
            if not multi_release:
                continue  # the JVM ignores META-INF/versions/ unless the manifest says Multi-Release
            release, name = int(versioned.group(1)), versioned.group(2)
        elif name.startswith("META-INF/"):
            continue
        for root in roots:
            if name.startswith(root) and not (root == "" and name.startswith(("BOOT-INF/", "WEB-INF/"))):
                path = name[len(root) :]
                classes.append(ClassFile(path, release, _class_major(zf, info, where), info.filename))
                break
    return JarUnit(where, tuple(classes))


def parse_pom_properties(text: str) -> Optional[MavenCoordinates]:
    """groupId, artifactId and version from a pom.properties (Java properties: `=` or `:`)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        key, value = _split_property(line)
        values[key] = value
    group, artifact, version = (values.get(k, "") for k in ("groupId", "artifactId", "version"))
    return MavenCoordinates(group, artifact, version) if group and artifact and version else None


def _split_property(line: str) -> tuple[str, str]:
    """`key=value`, `key: value` or `key value`, as java.util.Properties reads them (no escapes)."""
    match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)", line)
    return (match.group(1), match.group(2).strip()) if match else (line, "")


def _maven_coordinates(zf: zipfile.ZipFile) -> Optional[MavenCoordinates]:
    """The jar's own coordinates: only when it has exactly one pom.properties (a shaded jar has many)."""
    poms = [i for i in zf.infolist() if _POM_PROPERTIES.fullmatch(i.filename)]
    if len(poms) != 1 or poms[0].file_size > MAX_POM_PROPERTIES_BYTES:
        return None
    return parse_pom_properties(zf.read(poms[0]).decode("utf-8", "replace"))


def _all_pom_properties(zf: zipfile.ZipFile) -> list[tuple[str, MavenCoordinates]]:
    """Each readable pom.properties of a jar (a shaded jar has several), in entry order, bounded."""
    found = []
    for info in zf.infolist():
        if _POM_PROPERTIES.fullmatch(info.filename) and info.file_size <= MAX_POM_PROPERTIES_BYTES:
            coordinates = parse_pom_properties(zf.read(info).decode("utf-8", "replace"))
            if coordinates is not None:
                found.append((info.filename, coordinates))
                if len(found) == MAX_POM_PROPERTIES_PER_JAR:
                    break
    return found


def _nested_units(
    zf: zipfile.ZipFile, jar_name: str, with_classes: bool = True
) -> tuple[list[JarUnit], list[NestedJar]]:
    nested = [i for i in zf.infolist() if _NESTED_LIBS.fullmatch(i.filename)]
    if len(nested) > MAX_NESTED_JARS:
        raise JarError(
            f"{jar_name} nests {len(nested)} jars, more than the {MAX_NESTED_JARS} allowed; check that the "
            "target names the service's jar"
        )
    units, jars = [], []
    for info in nested:
        where = f"{jar_name}!/{info.filename}"
        if info.file_size > MAX_NESTED_JAR_BYTES:
            raise JarError(
                f"{where} is {info.file_size} bytes, more than the {MAX_NESTED_JAR_BYTES} bytes a nested jar may "
                "be; a dependency that large is not a library"
            )
        data = zf.read(info)
        sha256 = hashlib.sha256(data).hexdigest()
        # The entry's name is in the key: identify() reads it when the jar has no pom.properties.
        key = (sha256, info.filename, with_classes)
        kept = _kept_reading(key)
        if kept is None:
            with _open_zip(data, where) as inner:
                manifest = _read_manifest(inner, where, required=False)
                classes = None
                if with_classes:
                    multi = (_attr(manifest, "Multi-Release") or "").lower() == "true"
                    classes = _unit(inner, where, ("",), multi).classes
                kept = (classes, identify(info.filename, _all_pom_properties(inner), manifest))
            _keep_reading(key, kept)
        if with_classes:
            units.append(JarUnit(where, kept[0]))
        jars.append(NestedJar(info.filename, sha256, kept[1]))
    return units, jars


def nested_jars(content: bytes, jar_name: str) -> tuple[Optional[MavenCoordinates], tuple[NestedJar, ...]]:
    """The jar's own coordinates and each nested jar with its sha256 and identity, without reading
    classes: what the SBOM says of a jar, recomputed from its bytes (the verifier's check)."""
    try:
        with _open_zip(content, jar_name) as zf:
            return _maven_coordinates(zf), tuple(_nested_units(zf, jar_name, with_classes=False)[1])
    except JarError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError, NotImplementedError) as e:
        raise JarError(f"{jar_name} is a corrupt jar (zip) file: {e}") from e


def inspect_jar(content: bytes, jar_name: str) -> JarInfo:
    try:
        with _open_zip(content, jar_name) as zf:
            info = _inspect(zf, jar_name)
            return dataclasses.replace(info, sha256=hashlib.sha256(content).hexdigest(), maven=_maven_coordinates(zf))
    except JarError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError, NotImplementedError) as e:
        # e.g. a CRC error, an encrypted entry or an unknown compression while reading a member.
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
    multi_release = (_attr(attrs, "Multi-Release") or "").lower() == "true"
    # A Spring Boot launcher as Main-Class makes it a Boot jar (or war): the application is nested.
    is_boot = main_class.startswith(SPRING_LOADER_PREFIX)
    own = _unit(zf, jar_name, ("", *_APP_CLASSES) if is_boot else ("",), multi_release)
    _check_present(own, main_class, "Main-Class", jar_name)
    if is_boot:
        if start_class is None:
            raise JarError(
                f"{jar_name} is a Spring Boot jar (Main-Class {main_class}) without a Start-Class, so the launcher "
                "has nothing to start; build it with the Spring Boot plugin's repackage step"
            )
        _check_present(own, start_class, "Start-Class", jar_name, where="BOOT-INF/classes/")
    base = [c for c in own.classes if c.release == 0]
    top = max(base, key=lambda c: c.major, default=None)
    nested_units, nested = _nested_units(zf, jar_name) if is_boot else ([], [])
    return JarInfo(
        main_class=main_class,
        start_class=start_class,
        max_class_major=top.major if top else None,
        class_count=len(base),
        is_spring_boot_fat_jar=is_boot,
        jar_name=jar_name,
        max_class_entry=top.entry if top else None,
        units=(own, *nested_units),
        nested=tuple(nested),
    )


def _check_present(unit: JarUnit, name: str, attribute: str, jar_name: str, where: str = "") -> None:
    if not unit.has_class(_class_path(name)):
        raise JarError(
            f"{jar_name}: its {attribute} {name} is not in the jar (no {where}{_class_path(name)}); "
            f"fix the {attribute} in the build, or point `jar` at the jar that holds the class"
        )


def check_runs_on(info: JarInfo, jdk_java_major: int, jdk_version: str) -> None:
    """Raise JarError unless every class the JDK would load runs on it, and the entry classes are
    there for it (a multi-release variant above the JDK's version does not count)."""
    own = info.units[0] if info.units else None
    entry_classes = [("Main-Class", info.main_class), ("Start-Class", info.start_class or "")]
    for attribute, name in entry_classes:
        if own is not None and name and own.has_class(_class_path(name)):
            if not own.has_class(_class_path(name), jdk_java_major):
                releases = sorted({c.release for c in own.classes if c.path == _class_path(name)})
                raise JarError(
                    f"{info.jar_name or 'the jar'}: its {attribute} {name} is only in META-INF/versions/"
                    f"{releases[0]}/ (a multi-release variant for Java {releases[0]} and later), so the image's "
                    f"JDK, Java {jdk_java_major} (JAVA_VERSION={jdk_version}), does not see it; add a base "
                    f"version of the class compiled with `javac --release {jdk_java_major}`"
                )
    for unit in info.units:
        loaded = unit.effective(jdk_java_major)
        if not loaded:
            continue
        worst = max(loaded, key=lambda c: c.major)
        if class_major_to_java(worst.major) <= jdk_java_major:
            continue
        # Name the jar as the caller knows it (jar_name), and a nested jar inside it.
        where = unit.where.replace(info.units[0].where, info.jar_name or info.units[0].where, 1)
        needed = class_major_to_java(worst.major)
        raise JarError(
            f"{where}: classes are compiled for Java {needed} (class-file major version {worst.major}) "
            f"(e.g. {worst.entry}) but the image's JDK is Java {jdk_java_major} (JAVA_VERSION={jdk_version}); "
            f"compile with `javac --release {jdk_java_major}` or use a newer JDK"
        )
