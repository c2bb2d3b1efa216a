from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

import java_jars
from fake_jdk import class_bytes, make_jar
from occlum.jar import inspect_jar as inspect_jar_module
from occlum.jar.inspect_jar import (
    JarError,
    check_runs_on,
    class_major_to_java,
    inspect_jar,
    parse_manifest,
    parse_pom_properties,
)


def jar_bytes(tmp_path: Path, **kwargs) -> bytes:
    return make_jar(tmp_path / "app.jar", **kwargs).read_bytes()


def test_plain_executable_jar(tmp_path: Path) -> None:
    info = inspect_jar(jar_bytes(tmp_path, class_major=55), "app.jar")
    assert info.main_class == "app.Main"
    assert info.start_class is None
    assert info.max_class_major == 55
    assert info.class_count == 1
    assert not info.is_spring_boot_fat_jar
    check_runs_on(info, 11, "11.0.16")


def test_java17_classes_on_java11_jdk(tmp_path: Path) -> None:
    info = inspect_jar(jar_bytes(tmp_path, class_major=61), "app.jar")
    with pytest.raises(JarError) as e:
        check_runs_on(info, 11, "11.0.16")
    msg = str(e.value)
    assert "app.jar" in msg
    assert "compiled for Java 17 (class-file major version 61)" in msg
    assert "image's JDK is Java 11 (JAVA_VERSION=11.0.16)" in msg
    assert "javac --release 11" in msg
    assert "app/Main.class" in msg
    check_runs_on(info, 17, "17.0.9")


def test_multi_release_and_nested_entries_are_ignored(tmp_path: Path) -> None:
    extra = [
        ("META-INF/versions/17/app/Main.class", class_bytes(61)),
        ("BOOT-INF/lib/dep.jar", b"PK\x05\x06" + bytes(18)),
        ("other/Util.class", class_bytes(52)),
    ]
    info = inspect_jar(jar_bytes(tmp_path, class_major=55, extra_entries=extra), "app.jar")
    assert info.max_class_major == 55
    assert info.class_count == 2


def test_spring_boot_fat_jar(tmp_path: Path) -> None:
    manifest = (
        "Manifest-Version: 1.0\r\n"
        "Main-Class: org.springframework.boot.loader.JarLauncher\r\n"
        "Start-Class: com.example.demo.DemoApplicat\r\n"
        " ion\r\n"
        "Spring-Boot-Classes: BOOT-INF/classes/\r\n\r\n"
    )
    extra = [("BOOT-INF/classes/com/example/demo/DemoApplication.class", class_bytes(61))]
    content = jar_bytes(
        tmp_path,
        manifest=manifest,
        main_class="org.springframework.boot.loader.JarLauncher",
        class_major=52,
        extra_entries=extra,
    )
    info = inspect_jar(content, "demo.jar")
    assert info.is_spring_boot_fat_jar
    assert info.main_class == "org.springframework.boot.loader.JarLauncher"
    assert info.start_class == "com.example.demo.DemoApplication"
    assert info.max_class_major == 61
    assert info.max_class_entry == "BOOT-INF/classes/com/example/demo/DemoApplication.class"


def test_manifest_continuation_lines() -> None:
    text = "Manifest-Version: 1.0\nMain-Class: com.example.very.long.pack\n age.Main\n\nName: x\nMain-Class: nope\n"
    attrs = parse_manifest(text)
    assert attrs["Main-Class"] == "com.example.very.long.package.Main"
    info_text = "Main-Class: a.B\r\n  C\r\n"  # the second space is part of the value
    assert parse_manifest(info_text)["Main-Class"] == "a.B C"


def test_main_class_name_is_case_insensitive(tmp_path: Path) -> None:
    info = inspect_jar(jar_bytes(tmp_path, manifest="main-class: x.Y\n\n", main_class="x.Y"), "app.jar")
    assert info.main_class == "x.Y"


def test_no_manifest(tmp_path: Path) -> None:
    with pytest.raises(JarError, match=r"app\.jar has no META-INF/MANIFEST\.MF"):
        inspect_jar(jar_bytes(tmp_path, manifest=""), "app.jar")


def test_no_main_class(tmp_path: Path) -> None:
    with pytest.raises(JarError) as e:
        inspect_jar(jar_bytes(tmp_path, main_class=None), "lib.jar")
    msg = str(e.value)
    assert "lib.jar is not an executable jar" in msg
    assert "no Main-Class" in msg and "jar --main-class" in msg


def test_not_a_zip() -> None:
    with pytest.raises(JarError, match=r"app\.jar is not a jar \(zip\) file"):
        inspect_jar(b"#!/bin/sh\necho hi\n", "app.jar")


def test_corrupt_class_magic(tmp_path: Path) -> None:
    extra = [("app/Broken.class", b"\x00\x01\x02\x03\x00\x00\x00\x37")]
    with pytest.raises(JarError, match=r"app/Broken\.class is not a valid class file"):
        inspect_jar(jar_bytes(tmp_path, extra_entries=extra), "app.jar")


def test_class_major_to_java() -> None:
    assert class_major_to_java(52) == 8
    assert class_major_to_java(55) == 11
    assert class_major_to_java(61) == 17
    assert class_major_to_java(65) == 21
    with pytest.raises(ValueError):
        class_major_to_java(44)


def test_main_class_missing_from_the_jar(tmp_path: Path) -> None:
    content = jar_bytes(tmp_path, manifest="Main-Class: app.Mian\n\n")  # app/Main.class, not app/Mian.class
    with pytest.raises(JarError) as e:
        inspect_jar(content, "app.jar")
    assert str(e.value) == (
        "app.jar: its Main-Class app.Mian is not in the jar (no app/Mian.class); fix the Main-Class in the build, "
        "or point `jar` at the jar that holds the class"
    )


# --- jars of javac-compiled classes, laid out as the JVM and Spring Boot load them -------------------------

javac = pytest.mark.skipif(java_jars.JAVAC is None, reason="needs a host javac to build the fixture jars")


@javac
def test_a_nested_jar_of_a_spring_boot_jar_is_checked(tmp_path: Path) -> None:
    jar = java_jars.spring_boot_jar(tmp_path / "demo.jar", libs={"spring-core-5.3.jar": 8, "dep-2.0.jar": 17})
    info = inspect_jar(jar.read_bytes(), "demo.jar")
    assert info.is_spring_boot_fat_jar and info.start_class == "com.example.DemoApplication"
    assert [u.where for u in info.units] == [
        "demo.jar",
        "demo.jar!/BOOT-INF/lib/spring-core-5.3.jar",
        "demo.jar!/BOOT-INF/lib/dep-2.0.jar",
    ]
    with pytest.raises(JarError) as e:
        check_runs_on(info, 11, "11.0.16")
    assert str(e.value) == (
        "demo.jar!/BOOT-INF/lib/dep-2.0.jar: classes are compiled for Java 17 (class-file major version 61) "
        "(e.g. com/dep/Dep.class) but the image's JDK is Java 11 (JAVA_VERSION=11.0.16); compile with "
        "`javac --release 11` or use a newer JDK"
    )
    check_runs_on(info, 17, "17.0.9")


@javac
def test_a_spring_boot_jar_whose_libraries_fit_runs(tmp_path: Path) -> None:
    jar = java_jars.spring_boot_jar(tmp_path / "demo.jar", libs={"a.jar": 8, "b.jar": 11})
    info = inspect_jar(jar.read_bytes(), "demo.jar")
    check_runs_on(info, 11, "11.0.16")
    assert info.max_class_major == 55  # the application's own classes (BOOT-INF/classes), --release 11


@javac
def test_the_start_class_must_be_in_boot_inf_classes(tmp_path: Path) -> None:
    jar = java_jars.spring_boot_jar(tmp_path / "demo.jar", write_start_class=False)
    with pytest.raises(JarError) as e:
        inspect_jar(jar.read_bytes(), "demo.jar")
    assert "its Start-Class com.example.DemoApplication is not in the jar (no BOOT-INF/classes/com/example/" in str(
        e.value
    )


@javac
def test_a_multi_release_main_class_only_above_the_jdk_is_refused(tmp_path: Path) -> None:
    # The main class exists only as META-INF/versions/17/ (Java 17+): a Java 11 JVM cannot see it.
    jar = java_jars.multi_release_jar(
        tmp_path / "mr.jar", base={"app.Util": 11}, versioned={(17, "app.Main"): 17}, main="app.Main"
    )
    info = inspect_jar(jar.read_bytes(), "mr.jar")
    with pytest.raises(JarError) as e:
        check_runs_on(info, 11, "11.0.16")
    assert "its Main-Class app.Main is only in META-INF/versions/17/" in str(e.value)
    check_runs_on(info, 17, "17.0.9")


@javac
def test_the_multi_release_variant_the_jdk_picks_decides(tmp_path: Path) -> None:
    # Base classes for Java 11, a Java 17 variant under versions/17: fine on 11 (the base is loaded)
    # and on 17 (the variant is); a Java 17 variant under versions/11 is loaded by Java 11: refused.
    ok = java_jars.multi_release_jar(
        tmp_path / "ok.jar", base={"app.Main": 11}, versioned={(17, "app.Main"): 17}, main="app.Main"
    )
    info = inspect_jar(ok.read_bytes(), "ok.jar")
    check_runs_on(info, 11, "11.0.16")
    check_runs_on(info, 17, "17.0.9")
    bad = java_jars.multi_release_jar(
        tmp_path / "bad.jar", base={"app.Main": 11}, versioned={(11, "app.Main"): 17}, main="app.Main"
    )
    with pytest.raises(JarError, match=r"compiled for Java 17 .* \(e\.g\. META-INF/versions/11/app/Main\.class\)"):
        check_runs_on(inspect_jar(bad.read_bytes(), "bad.jar"), 11, "11.0.16")


def test_versions_are_ignored_without_the_multi_release_attribute(tmp_path: Path) -> None:
    extra = [("META-INF/versions/11/app/Main.class", class_bytes(65))]
    info = inspect_jar(jar_bytes(tmp_path, class_major=55, extra_entries=extra), "app.jar")
    check_runs_on(info, 11, "11.0.16")


# --- bounds -------------------------------------------------------------------------------------


def test_a_manifest_over_the_bound_is_refused_unread(tmp_path: Path) -> None:
    big = "Main-Class: app.Main\r\nX-Pad: " + "a" * inspect_jar_module.MAX_MANIFEST_BYTES + "\r\n\r\n"
    with pytest.raises(JarError, match=r"META-INF/MANIFEST\.MF is \d+ bytes, but a manifest may be at most 1048576"):
        inspect_jar(jar_bytes(tmp_path, manifest=big), "app.jar")
    just_under = "Main-Class: app.Main\r\nX-Pad: " + "a" * (inspect_jar_module.MAX_MANIFEST_BYTES - 64) + "\r\n\r\n"
    assert inspect_jar(jar_bytes(tmp_path, manifest=just_under), "app.jar").main_class == "app.Main"


def test_too_many_entries_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inspect_jar_module, "MAX_ENTRIES", 3)
    extra = [(f"res/{i}.txt", b"") for i in range(2)]
    with pytest.raises(JarError, match=r"has 4 entries, more than the 3"):
        inspect_jar(jar_bytes(tmp_path, extra_entries=extra), "app.jar")


def test_a_nested_jar_over_the_bound_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inspect_jar_module, "MAX_NESTED_JAR_BYTES", 100)
    manifest = "Main-Class: org.springframework.boot.loader.JarLauncher\r\nStart-Class: app.Main\r\n\r\n"
    extra = [("BOOT-INF/classes/app/Main.class", class_bytes(55)), ("BOOT-INF/lib/big.jar", b"x" * 101)]
    content = jar_bytes(
        tmp_path, manifest=manifest, main_class="org.springframework.boot.loader.JarLauncher", extra_entries=extra
    )
    with pytest.raises(JarError, match=r"app\.jar!/BOOT-INF/lib/big\.jar is 101 bytes, more than the 100"):
        inspect_jar(content, "app.jar")


def test_more_nested_jars_than_the_bound_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inspect_jar_module, "MAX_NESTED_JARS", 2)
    manifest = "Main-Class: org.springframework.boot.loader.JarLauncher\r\nStart-Class: app.Main\r\n\r\n"
    libs = [(f"BOOT-INF/lib/l{i}.jar", b"") for i in range(3)]
    extra = [("BOOT-INF/classes/app/Main.class", class_bytes(55)), *libs]
    content = jar_bytes(
        tmp_path, manifest=manifest, main_class="org.springframework.boot.loader.JarLauncher", extra_entries=extra
    )
    with pytest.raises(JarError, match=r"app\.jar nests 3 jars, more than the 2 allowed"):
        inspect_jar(content, "app.jar")


def test_a_pom_properties_over_the_bound_is_not_read(tmp_path: Path) -> None:
    # The real bound: coordinates are dropped (the SBOM claims none), the jar itself is fine.
    pom = b"groupId=g\nartifactId=a\nversion=1\n"
    at_bound = b"#" + b"x" * (inspect_jar_module.MAX_POM_PROPERTIES_BYTES - len(pom) - 2) + b"\n" + pom
    assert len(at_bound) == inspect_jar_module.MAX_POM_PROPERTIES_BYTES
    name = "META-INF/maven/g/a/pom.properties"
    maven = inspect_jar(jar_bytes(tmp_path, extra_entries=[(name, at_bound)]), "app.jar").maven
    assert maven is not None and maven.version == "1"
    assert inspect_jar(jar_bytes(tmp_path, extra_entries=[(name, b"#" + at_bound)]), "app.jar").maven is None


def test_identities_for_the_sbom(tmp_path: Path) -> None:
    jar = java_jars.spring_boot_jar(
        tmp_path / "svc.jar",
        libs={"dep-1.0.jar": 8, "plain.jar": 8},
        maven={"dep-1.0.jar": ("com.dep", "dep", "1.0"), "": ("com.example", "svc", "2.3.4-SNAPSHOT")},
    )
    content = jar.read_bytes()
    info = inspect_jar(content, "svc.jar")
    assert info.sha256 == hashlib.sha256(content).hexdigest()
    assert info.maven is not None and (info.maven.group, info.maven.artifact, info.maven.version) == (
        "com.example",
        "svc",
        "2.3.4-SNAPSHOT",
    )
    by_path = {n.path: n for n in info.nested}
    assert list(by_path) == ["BOOT-INF/lib/dep-1.0.jar", "BOOT-INF/lib/plain.jar"]
    dep = by_path["BOOT-INF/lib/dep-1.0.jar"]
    assert dep.maven is not None and (dep.maven.group, dep.maven.artifact, dep.maven.version) == (
        "com.dep",
        "dep",
        "1.0",
    )
    assert by_path["BOOT-INF/lib/plain.jar"].maven is None  # no pom.properties: no coordinates, not a guess
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        assert dep.sha256 == hashlib.sha256(zf.read("BOOT-INF/lib/dep-1.0.jar")).hexdigest()


def test_a_shaded_jar_with_many_poms_claims_no_coordinates(tmp_path: Path) -> None:
    extra = [
        ("META-INF/maven/a/a/pom.properties", b"groupId=a\nartifactId=a\nversion=1\n"),
        ("META-INF/maven/b/b/pom.properties", b"groupId=b\nartifactId=b\nversion=2\n"),
    ]
    assert inspect_jar(jar_bytes(tmp_path, extra_entries=extra), "app.jar").maven is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("groupId=g\nartifactId=a\nversion=1\n", ("g", "a", "1")),
        ("# comment\n! other\ngroupId : g\nartifactId a\nversion=1.0 \n", ("g", "a", "1.0")),
        ("groupId=g\nartifactId=a\n", None),  # no version
    ],
)
def test_pom_properties(text: str, expected) -> None:
    got = parse_pom_properties(text)
    assert (got and (got.group, got.artifact, got.version)) == expected


@javac
def test_a_nested_jar_read_once_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Kept by content across inspections (pantsd): a rebuilt fat jar around the same libraries reads
    # only its own classes again; the unit still names the jar it is in now.
    jar = java_jars.spring_boot_jar(tmp_path / "demo.jar", libs={"a-1.0.jar": 8, "b-2.0.jar": 17}).read_bytes()
    monkeypatch.setattr(inspect_jar_module, "_kept", type(inspect_jar_module._kept)())
    monkeypatch.setattr(inspect_jar_module, "_kept_classes", [0])
    read: list[str] = []
    real_unit = inspect_jar_module._unit

    def counting_unit(zf: zipfile.ZipFile, where: str, roots: tuple[str, ...], multi: bool) -> object:
        read.append(where)
        return real_unit(zf, where, roots, multi)

    monkeypatch.setattr(inspect_jar_module, "_unit", counting_unit)
    first = inspect_jar(jar, "demo.jar")
    assert read == ["demo.jar", "demo.jar!/BOOT-INF/lib/a-1.0.jar", "demo.jar!/BOOT-INF/lib/b-2.0.jar"]
    read.clear()
    again = inspect_jar(jar, "other.jar")
    assert read == ["other.jar"]
    assert [u.where for u in again.units[1:]] == [
        "other.jar!/BOOT-INF/lib/a-1.0.jar",
        "other.jar!/BOOT-INF/lib/b-2.0.jar",
    ]
    assert [u.classes for u in again.units] == [u.classes for u in first.units]
    assert again.nested == first.nested
    with pytest.raises(JarError, match=r"other.jar!/BOOT-INF/lib/b-2.0.jar: classes are compiled for Java 17"):
        check_runs_on(again, 11, "11.0.16")
    # Bounded: over MAX_KEPT_CLASSES, the least recently used readings go.
    monkeypatch.setattr(inspect_jar_module, "MAX_KEPT_CLASSES", 1)
    inspect_jar_module._keep_reading(("x", "y", True), ((), None))
    kept = inspect_jar_module._kept
    assert inspect_jar_module._kept_classes[0] <= 1 and ("x", "y", True) in kept
    assert [k[1] for k in kept] == ["BOOT-INF/lib/b-2.0.jar", "y"]  # a-1.0.jar, used least recently, went
