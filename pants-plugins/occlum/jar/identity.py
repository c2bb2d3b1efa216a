"""What a jar is, from what the jar says about itself, with how each part was found.

In order of trust:
1. `META-INF/maven/<group>/<artifact>/pom.properties`, written by Maven into the jar it builds:
   group, artifact and version, so a Maven purl. A shaded jar carries the pom.properties of what it
   absorbed too; the jar's own is the one whose `<artifact>-<version>` is the file's name, and the
   others are listed as what the jar contains.
2. `META-INF/MANIFEST.MF`: Implementation-Version or Bundle-Version, and a name (jars built by Gradle,
   Spring's own among them, carry no pom.properties). No Maven group can be read from a manifest
   (Bundle-SymbolicName and Automatic-Module-Name are not groups), so no Maven purl is made.
3. The file name, as Maven and Gradle name a dependency: `<artifact>-<version>.jar`.

Each part is recorded with its method and a confidence, for CycloneDX's `evidence.identity`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

_FILE_VERSION = re.compile(r"^(?P<name>.+?)-(?P<version>\d[^-]*(?:-[A-Za-z0-9.]+)*)$")

# CycloneDX techniques (componentIdentityEvidence.methods[].technique).
MANIFEST_ANALYSIS = "manifest-analysis"
FILENAME = "filename"


@dataclass(frozen=True)
class MavenCoordinates:
    """What `META-INF/maven/<group>/<artifact>/pom.properties` says a jar is."""

    group: str
    artifact: str
    version: str


@dataclass(frozen=True)
class Evidence:
    field: str  # "group", "name" or "version"
    value: str
    technique: str
    source: str  # what it was read from: an entry of the jar, a manifest attribute, the file name
    confidence: float


@dataclass(frozen=True)
class JarIdentity:
    name: str
    version: Optional[str]
    maven: Optional[MavenCoordinates]  # only from the jar's own pom.properties
    method: str  # "pom.properties", "manifest" or "file name"
    evidence: tuple[Evidence, ...]
    contains: tuple[MavenCoordinates, ...] = ()  # other pom.properties of a shaded jar


def _attr(manifest: dict[str, str], name: str) -> Optional[str]:
    for key, value in manifest.items():
        if key.lower() == name.lower() and value.strip():
            return value.strip()
    return None


def _stem(file_name: str) -> str:
    base = file_name.rsplit("/", 1)[-1]
    return base[:-4] if base.lower().endswith(".jar") else base


def _own_pom(stem: str, poms: list[tuple[str, MavenCoordinates]]) -> Optional[tuple[str, MavenCoordinates]]:
    if len(poms) == 1:
        return poms[0]
    named = [p for p in poms if f"{p[1].artifact}-{p[1].version}" == stem]
    return named[0] if len(named) == 1 else None


def identify(file_name: str, poms: list[tuple[str, MavenCoordinates]], manifest: dict[str, str]) -> JarIdentity:
    """The identity of the jar called `file_name`, from its pom.properties (entry, coordinates) and the
    main section of its manifest."""
    stem = _stem(file_name)
    own = _own_pom(stem, poms)
    contains = tuple(c for _, c in poms if own is None or c != own[1])
    if own is not None:
        entry, m = own
        evidence = tuple(
            Evidence(f, v, MANIFEST_ANALYSIS, entry, 1.0)
            for f, v in (("group", m.group), ("name", m.artifact), ("version", m.version))
        )
        return JarIdentity(m.artifact, m.version, m, "pom.properties", evidence, contains)

    by_file = _FILE_VERSION.match(stem)
    file_name_part, file_version = (by_file.group("name"), by_file.group("version")) if by_file else (stem, None)
    for attribute in ("Implementation-Version", "Bundle-Version"):
        version = _attr(manifest, attribute)
        if version is None:
            continue
        # When the manifest's version ends the file name, the two agree: the name is the rest of it.
        agree = stem.endswith(f"-{version}")
        name = stem[: -len(version) - 1] if agree else file_name_part
        evidence = (
            Evidence("name", name, FILENAME, file_name, 0.8 if agree else 0.5),
            Evidence("version", version, MANIFEST_ANALYSIS, f"MANIFEST.MF {attribute}", 0.9 if agree else 0.7),
        )
        return JarIdentity(name, version, None, "manifest", evidence, contains)
    found = [Evidence("name", file_name_part, FILENAME, file_name, 0.5 if file_version else 0.3)]
    if file_version:
        found.append(Evidence("version", file_version, FILENAME, file_name, 0.5))
    return JarIdentity(file_name_part, file_version, None, "file name", tuple(found), contains)
