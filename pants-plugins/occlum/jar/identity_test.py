"""A jar's identity: pom.properties first, then its manifest, then its file name; each with its method."""

from __future__ import annotations

import pytest

from occlum.jar.identity import MavenCoordinates, identify

POM = "META-INF/maven/{}/{}/pom.properties"


def _pom(group: str, artifact: str, version: str) -> tuple[str, MavenCoordinates]:
    return POM.format(group, artifact), MavenCoordinates(group, artifact, version)


def _evidence(identity) -> dict:
    return {e.field: (e.value, e.technique, e.source, e.confidence) for e in identity.evidence}


def test_one_pom_properties_gives_maven_coordinates() -> None:
    identity = identify(
        "BOOT-INF/lib/jackson-core-2.13.5.jar", [_pom("com.fasterxml.jackson.core", "jackson-core", "2.13.5")], {}
    )
    assert identity.maven == MavenCoordinates("com.fasterxml.jackson.core", "jackson-core", "2.13.5")
    assert (identity.name, identity.version, identity.method, identity.contains) == (
        "jackson-core",
        "2.13.5",
        "pom.properties",
        (),
    )
    assert _evidence(identity)["group"] == (
        "com.fasterxml.jackson.core",
        "manifest-analysis",
        POM.format("com.fasterxml.jackson.core", "jackson-core"),
        1.0,
    )


def test_a_shaded_jar_is_its_own_pom_and_contains_the_others() -> None:
    poms = [_pom("com.sun.activation", "jakarta.activation", "2.0.1"), _pom("com.sun.mail", "jakarta.mail", "2.0.5")]
    identity = identify("BOOT-INF/lib/jakarta.mail-2.0.5.jar", poms, {})
    assert identity.maven == MavenCoordinates("com.sun.mail", "jakarta.mail", "2.0.5")
    assert identity.contains == (MavenCoordinates("com.sun.activation", "jakarta.activation", "2.0.1"),)


def test_a_shaded_jar_none_of_whose_poms_is_its_name_lists_them_all_and_claims_none() -> None:
    poms = [_pom("a", "x", "1"), _pom("b", "y", "2")]
    identity = identify("BOOT-INF/lib/bundle-3.0.jar", poms, {"Bundle-Version": "3.0"})
    assert identity.maven is None and identity.method == "manifest"
    assert (identity.name, identity.version) == ("bundle", "3.0")
    assert [c.artifact for c in identity.contains] == ["x", "y"]


@pytest.mark.parametrize(
    "file_name, manifest, name, version, name_conf, version_source",
    [
        # Spring's jars are built by Gradle: no pom.properties, an Implementation-Version.
        (
            "spring-core-5.3.31.jar",
            {
                "Implementation-Title": "spring-core",
                "Implementation-Version": "5.3.31",
                "Automatic-Module-Name": "spring.core",
            },
            "spring-core",
            "5.3.31",
            0.8,
            "MANIFEST.MF Implementation-Version",
        ),
        # Bouncy Castle: only Bundle-* attributes.
        (
            "bcprov-jdk18on-1.87.jar",
            {"Bundle-SymbolicName": "bcprov", "Bundle-Version": "1.87.0"},
            "bcprov-jdk18on",
            "1.87.0",
            0.5,
            "MANIFEST.MF Bundle-Version",
        ),
        (
            "hibernate-core-5.6.15.Final.jar",
            {"Bundle-Version": "5.6.15.Final"},
            "hibernate-core",
            "5.6.15.Final",
            0.8,
            "MANIFEST.MF Bundle-Version",
        ),
        # Implementation-Version wins over Bundle-Version.
        (
            "x-1.0.jar",
            {"Implementation-Version": "1.0", "Bundle-Version": "1.0.0"},
            "x",
            "1.0",
            0.8,
            "MANIFEST.MF Implementation-Version",
        ),
    ],
)
def test_the_manifest_names_a_jar_without_pom_properties(
    file_name, manifest, name, version, name_conf, version_source
) -> None:
    identity = identify(f"BOOT-INF/lib/{file_name}", [], manifest)
    assert (identity.name, identity.version, identity.maven, identity.method) == (name, version, None, "manifest")
    evidence = _evidence(identity)
    assert evidence["name"][1:] == ("filename", f"BOOT-INF/lib/{file_name}", name_conf)
    assert evidence["version"][1:3] == ("manifest-analysis", version_source)


@pytest.mark.parametrize(
    "file_name, name, version",
    [
        ("aopalliance-1.0.jar", "aopalliance", "1.0"),
        ("kafka-clients-3.9.2.jar", "kafka-clients", "3.9.2"),
        ("guava-33.4.8-jre.jar", "guava", "33.4.8-jre"),
        ("lib-1.0-SNAPSHOT.jar", "lib", "1.0-SNAPSHOT"),
        ("internal.jar", "internal", None),
    ],
)
def test_last_the_file_name(file_name, name, version) -> None:
    identity = identify(f"BOOT-INF/lib/{file_name}", [], {"Created-By": "Maven"})
    assert (identity.name, identity.version, identity.maven, identity.method) == (name, version, None, "file name")
    assert {e.technique for e in identity.evidence} == {"filename"}
    assert ("version" in _evidence(identity)) == (version is not None)
