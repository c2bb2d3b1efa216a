"""The `jar` field of `occlum_java_image`: which targets yield the service jar, and the checks on it,
seen through `pants package`."""

from __future__ import annotations

from pathlib import Path

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

import java_jars
from occlum_testutil import Package, ServedJdk, fake_jdk, package_image, runner_serving, serve_fake_jdk

ADDR = Address("svc", target_name="enclave")
JAR_DIR = "/usr/lib/spring"


@pytest.fixture
def served(tmp_path: Path) -> ServedJdk:
    return serve_fake_jdk(tmp_path / "mirror")


@pytest.fixture
def rule_runner(served: ServedJdk) -> RuleRunner:
    return runner_serving(served)


def jar_bytes(tmp_path: Path, name: str = "app.jar", **kwargs) -> bytes:
    d = tmp_path / "jars"
    d.mkdir(exist_ok=True)
    return fake_jdk.make_jar(d / name, **kwargs).read_bytes()


def write_svc(rr: RuleRunner, files: dict, app_target: str, jar: str = ":app") -> None:
    """svc/ holds `files`, a `dragonwell_jdk` named jdk, `app_target` and an image whose `jar` is `jar`."""
    rr.write_files(
        {
            **{f"svc/{k}": v for k, v in files.items()},
            "svc/BUILD": (
                'dragonwell_jdk(name="jdk")\n'
                f"{app_target}\n"
                f'occlum_java_image(name="enclave", jdk=":jdk", jar="{jar}")\n'
            ),
        }
    )


def build(rr: RuleRunner) -> Package:
    return package_image(rr, ADDR)


def build_error(rr: RuleRunner) -> str:
    with pytest.raises(ExecutionError) as exc:
        package_image(rr, ADDR)
    return str(exc.value)


# ---------------------------------------------------------------------------------------------
# Jars that work
# ---------------------------------------------------------------------------------------------


def test_jar_from_a_file_target(rule_runner: RuleRunner, tmp_path: Path) -> None:
    write_svc(
        rule_runner,
        {"app.jar": jar_bytes(tmp_path, main_class="com.example.Main")},
        'file(name="app", source="app.jar")',
    )
    pkg = build(rule_runner)
    summary = pkg.summary
    assert summary["jar"]["main_class"] == "com.example.Main"
    assert summary["jar"]["class_file_major"] == 55
    assert summary["jar"]["source"] == "svc:app (svc/app.jar)"
    assert summary["jar"]["enclave_path"] == f"{JAR_DIR}/app.jar"
    # The very bytes of the jar land in the image.
    assert pkg.files[f"svc/enclave/image{JAR_DIR}/app.jar"] == (tmp_path / "jars" / "app.jar").read_bytes()


def test_jar_name_in_the_image_follows_the_file_name(rule_runner: RuleRunner, tmp_path: Path) -> None:
    write_svc(
        rule_runner,
        {"my-service.jar": jar_bytes(tmp_path, "my-service.jar")},
        'file(name="app", source="my-service.jar")',
    )
    pkg = build(rule_runner)
    jar_paths = {p for p in pkg.image_paths() if p.endswith(".jar")}
    assert jar_paths == {f"{JAR_DIR}/my-service.jar"}
    assert pkg.summary["jar"]["enclave_path"] == f"{JAR_DIR}/my-service.jar"
    assert pkg.summary["command"][-2:] == ["-jar", f"{JAR_DIR}/my-service.jar"]


def test_jar_in_a_subfolder_lands_directly_in_jar_dir(rule_runner: RuleRunner, tmp_path: Path) -> None:
    write_svc(
        rule_runner,
        {"build/libs/svc-1.0.jar": jar_bytes(tmp_path, "svc-1.0.jar")},
        'file(name="app", source="build/libs/svc-1.0.jar")',
    )
    pkg = build(rule_runner)
    assert {p for p in pkg.image_paths() if p.endswith(".jar")} == {f"{JAR_DIR}/svc-1.0.jar"}


def test_jar_from_a_files_target_holding_one_jar(rule_runner: RuleRunner, tmp_path: Path) -> None:
    write_svc(
        rule_runner,
        {"app.jar": jar_bytes(tmp_path), "README.txt": b"docs\n"},
        'files(name="app", sources=["app.jar", "README.txt"])',
    )
    pkg = build(rule_runner)
    assert pkg.summary["jar"]["enclave_path"] == f"{JAR_DIR}/app.jar"
    assert not any(p.endswith("README.txt") for p in pkg.image_paths())


def test_spring_boot_fat_jar_with_start_class(rule_runner: RuleRunner, tmp_path: Path) -> None:
    fake_jdk.make_jar(tmp_path / "lib.jar", main_class="com.lib.Util", class_major=52)
    manifest = (
        "Manifest-Version: 1.0\r\n"
        "Main-Class: org.springframework.boot.loader.JarLauncher\r\n"
        "Start-Class: com.example.DemoApplication\r\n"
        "Spring-Boot-Classes: BOOT-INF/classes/\r\n"
        "Spring-Boot-Lib: BOOT-INF/lib/\r\n\r\n"
    )
    content = jar_bytes(
        tmp_path,
        manifest=manifest,
        extra_entries=[
            ("BOOT-INF/classes/com/example/DemoApplication.class", fake_jdk.class_bytes(55)),
            # A nested library jar with Java 8 classes: it loads into the same JVM, and fits.
            ("BOOT-INF/lib/lib.jar", (tmp_path / "lib.jar").read_bytes()),
        ],
        main_class="org.springframework.boot.loader.JarLauncher",
    )
    write_svc(rule_runner, {"demo.jar": content}, 'file(name="app", source="demo.jar")')
    summary = build(rule_runner).summary
    assert summary["jar"]["main_class"] == "org.springframework.boot.loader.JarLauncher"
    assert summary["jar"]["class_file_major"] == 55
    assert summary["jar"]["enclave_path"] == f"{JAR_DIR}/demo.jar"


def test_java_8_classes_run_on_java_11(rule_runner: RuleRunner, tmp_path: Path) -> None:
    write_svc(rule_runner, {"app.jar": jar_bytes(tmp_path, class_major=52)}, 'file(name="app", source="app.jar")')
    assert build(rule_runner).summary["jar"]["class_file_major"] == 52


# ---------------------------------------------------------------------------------------------
# Targets that do not yield exactly one jar
# ---------------------------------------------------------------------------------------------


def test_files_target_with_two_jars(rule_runner: RuleRunner, tmp_path: Path) -> None:
    write_svc(
        rule_runner,
        {"a.jar": jar_bytes(tmp_path, "a.jar"), "b.jar": jar_bytes(tmp_path, "b.jar")},
        'files(name="app", sources=["a.jar", "b.jar"])',
    )
    msg = build_error(rule_runner)
    assert "The `jar` field of svc:enclave names svc:app (a `files`)" in msg
    assert "2 `.jar` files, but the image needs exactly one" in msg
    assert "Files found: svc/a.jar, svc/b.jar." in msg


def test_file_target_holding_no_jar(rule_runner: RuleRunner) -> None:
    write_svc(rule_runner, {"notes.txt": b"hello\n"}, 'file(name="app", source="notes.txt")')
    msg = build_error(rule_runner)
    assert "The `jar` field of svc:enclave names svc:app (a `file`)" in msg
    assert "0 `.jar` files, but the image needs exactly one" in msg
    assert "Files found: svc/notes.txt." in msg


def test_jar_pointing_at_a_dragonwell_jdk_target(rule_runner: RuleRunner, tmp_path: Path) -> None:
    write_svc(rule_runner, {"app.jar": jar_bytes(tmp_path)}, 'file(name="app", source="app.jar")', jar=":jdk")
    msg = build_error(rule_runner)
    assert "The `jar` field of svc:enclave names svc:jdk (a `dragonwell_jdk`)" in msg
    assert "which can neither be packaged nor holds files" in msg
    assert "Use a `file`, `deploy_jar`" in msg


def test_jar_pointing_at_a_missing_target(rule_runner: RuleRunner, tmp_path: Path) -> None:
    write_svc(rule_runner, {"app.jar": jar_bytes(tmp_path)}, 'file(name="app", source="app.jar")', jar=":nope")
    msg = build_error(rule_runner)
    assert (
        "The `jar` field of svc:enclave is ':nope', which does not name an existing target. It must be the address "
        "of a target that yields the service's jar"
    ) in msg, msg


def test_a_bare_jdk_name_gets_a_hint(rule_runner: RuleRunner, tmp_path: Path) -> None:
    rule_runner.write_files(
        {
            "svc/app.jar": jar_bytes(tmp_path),
            "svc/BUILD": (
                'dragonwell_jdk(name="jdk")\nfile(name="app", source="app.jar")\n'
                'occlum_java_image(name="enclave", jdk="jdk", jar=":app")\n'
            ),
        }
    )
    msg = build_error(rule_runner)
    assert (
        "The `jdk` field of svc:enclave is 'jdk', which does not name an existing target. It must be the address "
        'of a `dragonwell_jdk` target; for a target named jdk in the same BUILD file write jdk=":jdk".'
    ) in msg, msg


# ---------------------------------------------------------------------------------------------
# Jars that are not executable, corrupt, or too new
# ---------------------------------------------------------------------------------------------


def test_jar_without_manifest(rule_runner: RuleRunner, tmp_path: Path) -> None:
    write_svc(rule_runner, {"app.jar": jar_bytes(tmp_path, manifest="")}, 'file(name="app", source="app.jar")')
    msg = build_error(rule_runner)
    assert (
        "The `jar` field of svc:enclave names svc:app (a `file`): svc/app.jar has no META-INF/MANIFEST.MF, "
        "so it is not an executable jar; build it with `jar --create --main-class ...`"
    ) in msg


def test_manifest_without_main_class(rule_runner: RuleRunner, tmp_path: Path) -> None:
    write_svc(rule_runner, {"app.jar": jar_bytes(tmp_path, main_class=None)}, 'file(name="app", source="app.jar")')
    msg = build_error(rule_runner)
    assert (
        "The `jar` field of svc:enclave names svc:app (a `file`): svc/app.jar is not an executable jar: "
        "its META-INF/MANIFEST.MF has no Main-Class; build it with `jar --main-class ...` / "
        "set Main-Class in your build tool"
    ) in msg


def test_java_17_classes_on_a_java_11_jdk(rule_runner: RuleRunner, tmp_path: Path) -> None:
    write_svc(rule_runner, {"app.jar": jar_bytes(tmp_path, class_major=61)}, 'file(name="app", source="app.jar")')
    msg = build_error(rule_runner)
    assert "The `jar` field of svc:enclave names svc:app (svc/app.jar)" in msg
    assert "classes are compiled for Java 17 (class-file major version 61) (e.g. app/Main.class)" in msg
    assert "the image's JDK is Java 11 (JAVA_VERSION=11.0.16)" in msg
    assert "javac --release 11" in msg


def test_corrupt_zip(rule_runner: RuleRunner) -> None:
    junk = bytes(range(256)) * 4
    write_svc(rule_runner, {"app.jar": junk}, 'file(name="app", source="app.jar")')
    msg = build_error(rule_runner)
    assert (
        "The `jar` field of svc:enclave names svc:app (a `file`): svc/app.jar is not a jar (zip) file "
        "(File is not a zip file; 1024 bytes); point the target at the built executable jar"
    ) in msg


def test_class_entry_that_is_not_a_class_file(rule_runner: RuleRunner, tmp_path: Path) -> None:
    content = jar_bytes(tmp_path, extra_entries=[("app/Broken.class", b"not a class")])
    write_svc(rule_runner, {"app.jar": content}, 'file(name="app", source="app.jar")')
    msg = build_error(rule_runner)
    assert "names svc:app (a `file`): svc/app.jar: entry app/Broken.class is not a valid class file" in msg
    assert "the jar is corrupt" in msg


@pytest.mark.skipif(java_jars.JAVAC is None, reason="needs a host javac to build the Spring Boot jar")
def test_a_spring_boot_jar_with_a_java_17_dependency_is_refused(rule_runner: RuleRunner, tmp_path: Path) -> None:
    # Spring Boot 2.7 layout, built with javac and jar: one dependency compiled for Java 17.
    jar = java_jars.spring_boot_jar(tmp_path / "demo.jar", libs={"spring-core-5.3.31.jar": 8, "newdep-1.0.jar": 17})
    write_svc(rule_runner, {"demo.jar": jar.read_bytes()}, 'file(name="app", source="demo.jar")')
    msg = build_error(rule_runner)
    assert (
        "The `jar` field of svc:enclave names svc:app (svc/demo.jar): demo.jar!/BOOT-INF/lib/newdep-1.0.jar: "
        "classes are compiled for Java 17 (class-file major version 61) (e.g. com/dep/Dep.class) but the image's "
        "JDK is Java 11"
    ) in msg, msg


def test_a_jar_over_the_size_bound_is_refused_before_it_is_read(
    rule_runner: RuleRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from occlum.jar import inspect_jar

    jar = jar_bytes(tmp_path)
    monkeypatch.setattr(inspect_jar, "MAX_JAR_BYTES", len(jar) - 1)  # the real bound is 1 GiB
    write_svc(rule_runner, {"app.jar": jar}, 'file(name="app", source="app.jar")')
    msg = build_error(rule_runner)
    assert f"is {len(jar)} bytes, more than the {len(jar) - 1} bytes a service jar may be" in msg
    assert "svc:enclave" in msg and "`files` field" in msg
