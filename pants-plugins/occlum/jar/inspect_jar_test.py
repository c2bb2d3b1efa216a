from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from fake_jdk import class_bytes, make_jar  # noqa: E402
from occlum.jar.inspect_jar import (  # noqa: E402
    JarError,
    check_runs_on,
    class_major_to_java,
    inspect_jar,
    parse_manifest,
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
    info = inspect_jar(jar_bytes(tmp_path, manifest=manifest, class_major=52, extra_entries=extra), "demo.jar")
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
    info = inspect_jar(jar_bytes(tmp_path, manifest="main-class: x.Y\n\n"), "app.jar")
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


def test_jar_without_classes_runs_anywhere(tmp_path: Path) -> None:
    info = replace(inspect_jar(jar_bytes(tmp_path), "app.jar"), max_class_major=None)
    check_runs_on(info, 8, "1.8.0_292")  # a resources-only jar constrains nothing
