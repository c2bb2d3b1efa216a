"""The `dependency_lock` field of `occlum_java_image`, seen through `pants package`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from occlum_testutil import ServedJdk, fake_jdk, package_image, runner_serving, serve_fake_jdk

ADDR = Address("svc", target_name="enclave")
MANIFEST = (
    "Manifest-Version: 1.0\r\n"
    "Main-Class: org.springframework.boot.loader.JarLauncher\r\n"
    "Start-Class: com.example.DemoApplication\r\n\r\n"
)


@pytest.fixture
def served(tmp_path: Path) -> ServedJdk:
    return serve_fake_jdk(tmp_path / "mirror")


@pytest.fixture
def rule_runner(served: ServedJdk) -> RuleRunner:
    return runner_serving(served)


def boot_jar(tmp_path: Path, libs: dict[str, bytes]) -> bytes:
    return fake_jdk.make_jar(
        tmp_path / "demo.jar",
        manifest=MANIFEST,
        main_class="org.springframework.boot.loader.JarLauncher",
        extra_entries=[
            ("BOOT-INF/classes/com/example/DemoApplication.class", fake_jdk.class_bytes(55)),
            *((f"BOOT-INF/lib/{name}", data) for name, data in libs.items()),
        ],
    ).read_bytes()


def lib(tmp_path: Path, name: str) -> bytes:
    return fake_jdk.make_jar(tmp_path / name, main_class=f"com.lib.{name[0].upper()}", class_major=52).read_bytes()


def write_svc(rr: RuleRunner, jar: bytes, lock: str | None) -> None:
    field = ', dependency_lock="maven.lock"' if lock is not None else ""
    rr.write_files(
        {
            "svc/demo.jar": jar,
            **({"svc/maven.lock": lock} if lock is not None else {}),
            "svc/BUILD": (
                'dragonwell_jdk(name="jdk")\n'
                'file(name="app", source="demo.jar")\n'
                f'occlum_java_image(name="enclave", jdk=":jdk", jar=":app"{field})\n'
            ),
        }
    )


def error(rr: RuleRunner) -> str:
    with pytest.raises(ExecutionError) as exc:
        package_image(rr, ADDR)
    return str(exc.value)


def sums(libs: dict[str, bytes]) -> str:
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(libs.items()))


def test_a_jar_holding_the_locked_jars_packages(rule_runner: RuleRunner, tmp_path: Path) -> None:
    libs = {"a-1.0.jar": lib(tmp_path, "a.jar"), "b-2.0.jar": lib(tmp_path, "b.jar")}
    write_svc(rule_runner, boot_jar(tmp_path, libs), sums(libs))
    assert package_image(rule_runner, ADDR).summary["jar"]["enclave_path"] == "/usr/lib/spring/demo.jar"


def test_a_jar_that_differs_from_its_lock_is_refused_and_each_difference_named(
    rule_runner: RuleRunner, tmp_path: Path
) -> None:
    libs = {"a-1.0.jar": lib(tmp_path, "a.jar"), "b-2.0.jar": lib(tmp_path, "b.jar")}
    write_svc(rule_runner, boot_jar(tmp_path, libs), sums(libs))
    package_image(rule_runner, ADDR)
    # The same names, other bytes for one; one jar more; one locked jar gone.
    changed = {"a-1.0.jar": lib(tmp_path, "c.jar"), "new-3.0.jar": lib(tmp_path, "d.jar")}
    write_svc(rule_runner, boot_jar(tmp_path, changed), sums(libs))
    msg = error(rule_runner)
    assert "The jar of svc:enclave (svc:app (svc/demo.jar)) does not hold the nested jars its `dependency_lock`" in msg
    assert "(svc/maven.lock) pins:" in msg
    got, want = hashlib.sha256(changed["a-1.0.jar"]).hexdigest(), hashlib.sha256(libs["a-1.0.jar"]).hexdigest()
    assert f"  - BOOT-INF/lib/a-1.0.jar: sha256 {got} in the jar, {want} in the lock" in msg
    assert "  - BOOT-INF/lib/new-3.0.jar: in the jar, not in the lock" in msg
    assert "  - b-2.0.jar: in the lock, not in the jar" in msg
    assert "regenerate the lock" in msg


def test_a_lock_that_is_not_sha256sum_output_is_refused_with_its_line(rule_runner: RuleRunner, tmp_path: Path) -> None:
    libs = {"a-1.0.jar": lib(tmp_path, "a.jar")}
    write_svc(rule_runner, boot_jar(tmp_path, libs), sums(libs) + "a-1.0.jar\n")
    msg = error(rule_runner)
    assert "The `dependency_lock` of svc:enclave (svc/maven.lock) line 2 is 'a-1.0.jar'" in msg
    assert "not `<sha256>  <jar name>`" in msg


def test_a_lock_file_that_is_missing_is_named(rule_runner: RuleRunner, tmp_path: Path) -> None:
    write_svc(rule_runner, boot_jar(tmp_path, {}), None)
    rule_runner.write_files(
        {
            "svc/BUILD": 'dragonwell_jdk(name="jdk")\nfile(name="app", source="demo.jar")\n'
            'occlum_java_image(name="enclave", jdk=":jdk", jar=":app", dependency_lock="nope.lock")\n'
        }
    )
    msg = error(rule_runner)
    assert "The `dependency_lock` field of svc:enclave is 'nope.lock', but no such file is in svc/." in msg
