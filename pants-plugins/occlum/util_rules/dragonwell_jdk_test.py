"""The `dragonwell_jdk` target: pin resolution, each field, and the JDK checks seen through `package`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from occlum.subsystems.dragonwell import DEFAULT_KNOWN_VERSIONS, DragonwellPin
from occlum.util_rules.dragonwell_jdk import DragonwellJdkError, resolve_pin
from occlum_testutil import ServedJdk, fake_jdk, new_rule_runner, package_image, serve_fake_jdk

ADDR = Address("svc", target_name="enclave")
JDK = Address("svc", target_name="jdk")
PINS = tuple(DragonwellPin.parse(p) for p in DEFAULT_KNOWN_VERSIONS)


def _resolve(**kw) -> DragonwellPin:
    args: dict[str, Any] = dict(
        version=None, edition=None, libc="musl", url=None, sha256=None, size=None, pins=PINS, platform="linux_x86_64"
    )
    args.update(kw)
    return resolve_pin(JDK, **args)


def test_default_is_occlums_pin() -> None:
    pin = _resolve()
    assert (pin.version, pin.edition, pin.libc) == ("11.0.16.12.8", "standard", "musl")
    assert pin.sha256 == "44ca11f491873863e43bb6e476df7fd8fa453c563a932cf488b9d00ab7ef68c9"
    assert pin.size is None  # no source records its size; the sha256 alone is checked


def test_edition_selects_the_extended_build() -> None:
    assert _resolve(edition="extended").sha256.startswith("ea9de44b")


def test_libc_selects_the_glibc_build() -> None:
    assert _resolve(libc="glibc").url.endswith("_x64_linux.tar.gz")


def test_pre_edition_release_has_no_edition() -> None:
    assert _resolve(version="11.0.11.7").size == 192995510
    with pytest.raises(
        DragonwellJdkError, match=r"pinned with editions: none \(it predates editions\)\. Remove `edition`"
    ):
        _resolve(version="11.0.11.7", edition="standard")


def test_unknown_version_lists_known_builds() -> None:
    with pytest.raises(DragonwellJdkError) as exc:
        _resolve(version="11.0.99.1")
    msg = str(exc.value)
    assert "svc:jdk asks for Dragonwell 11.0.99.1 (musl, linux_x86_64)" in msg
    assert "11.0.16.12.8 standard musl linux_x86_64" in msg and "`url`" in msg


def test_no_musl_build_for_arm() -> None:
    with pytest.raises(DragonwellJdkError, match="linux_arm64"):
        _resolve(platform="linux_arm64")


def test_url_pin_wins() -> None:
    pin = _resolve(url="file:///x.tar.gz", sha256="a" * 64, size=10)
    assert (pin.url, pin.sha256, pin.size) == ("file:///x.tar.gz", "a" * 64, 10)


def test_every_default_pin_parses_and_is_unique() -> None:
    keys = [(p.version, p.edition, p.libc, p.platform) for p in PINS]
    assert len(keys) == len(set(keys)) == len(DEFAULT_KNOWN_VERSIONS)


# --- through `pants package` ------------------------------------------------------------------


@pytest.fixture
def rule_runner(tmp_path: Path) -> RuleRunner:
    rr = new_rule_runner()
    jar = fake_jdk.make_jar(tmp_path / "app.jar", class_major=55)
    rr.write_files({"svc/app.jar": jar.read_bytes()})
    return rr


def write(rr: RuleRunner, jdk_fields: str, **opts: str) -> None:
    rr.write_files(
        {
            "svc/BUILD": (
                f"dragonwell_jdk(name='jdk', {jdk_fields})\n"
                "file(name='app', source='app.jar')\n"
                "occlum_java_image(name='enclave', jdk=':jdk', jar=':app')\n"
            )
        }
    )


def error_of(rr: RuleRunner) -> str:
    with pytest.raises(ExecutionError) as exc:
        package_image(rr, ADDR)
    return str(exc.value)


def test_url_and_sha256_fields_pin_a_build(rule_runner: RuleRunner, tmp_path: Path) -> None:
    served = serve_fake_jdk(tmp_path / "m", name="custom.tar.gz", java_version="11.0.20")
    write(rule_runner, f"url={served.url!r}, sha256={served.sha256!r}, size={served.size}")
    summary = package_image(rule_runner, ADDR).summary
    assert summary["jdk"]["java_version"] == "11.0.20" and summary["jdk"]["sha256"] == served.sha256


def test_size_field_is_checked(rule_runner: RuleRunner, tmp_path: Path) -> None:
    served = serve_fake_jdk(tmp_path / "m", name="custom.tar.gz")
    write(rule_runner, f"url={served.url!r}, sha256={served.sha256!r}, size={served.size + 1}")
    assert f"got {served.size} bytes, but the pin says {served.size + 1} bytes" in error_of(rule_runner)


def test_glibc_jdk_declared_musl_is_refused(rule_runner: RuleRunner, tmp_path: Path) -> None:
    served = serve_fake_jdk(tmp_path / "m", name="glibc.tar.gz", libc="glibc")
    write(rule_runner, f"url={served.url!r}, sha256={served.sha256!r}")
    msg = error_of(rule_runner)
    assert "glibc" in msg and "libc='musl'" in msg and "/lib64/ld-linux-x86-64.so.2" in msg
    # Declaring it glibc is accepted and reported.
    write(rule_runner, f"url={served.url!r}, sha256={served.sha256!r}, libc='glibc'")
    assert package_image(rule_runner, ADDR).summary["jdk"]["libc"] == "glibc"


def test_version_edition_libc_fields_pick_from_the_table(rule_runner: RuleRunner, tmp_path: Path) -> None:
    std = serve_fake_jdk(tmp_path / "std", java_version="11.0.16")
    ext = serve_fake_jdk(tmp_path / "ext", java_version="11.0.17")
    rule_runner.set_options(
        [f"--dragonwell-known-versions=['{std.pin()}', '{ext.pin(edition='extended')}']"], env_inherit={"PATH"}
    )
    write(rule_runner, "version='11.0.16.12.8'")
    assert package_image(rule_runner, ADDR).summary["jdk"]["java_version"] == "11.0.16"
    write(rule_runner, "version='11.0.16.12.8', edition='extended'")
    assert package_image(rule_runner, ADDR).summary["jdk"]["java_version"] == "11.0.17"
    write(rule_runner, "version='11.0.16.12.8', libc='glibc'")
    assert "does not pin" in error_of(rule_runner)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(omit=("bin/java",)), "bin/java"),
        (dict(omit=("lib/server/libjvm.so",)), "libjvm.so"),
        (dict(java_version=None), "JAVA_VERSION"),
        (dict(top=""), "top"),
        (dict(extra_members=(fake_jdk.TarMember("../evil", data=b"x"),)), ".."),
    ],
)
def test_bad_archives_are_refused_with_the_target_named(
    rule_runner: RuleRunner, tmp_path: Path, kwargs: dict, words: str
) -> None:
    served = serve_fake_jdk(tmp_path / "m", name="bad.tar.gz", **kwargs)
    write(rule_runner, f"url={served.url!r}, sha256={served.sha256!r}")
    msg = error_of(rule_runner)
    assert "svc:jdk" in msg and words in msg
    assert "Traceback" not in msg.split("DragonwellJdkError")[-1]


def test_jdk_field_must_name_a_dragonwell_jdk(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {"svc/BUILD": "file(name='app', source='app.jar')\nocclum_java_image(name='enclave', jdk=':app', jar=':app')\n"}
    )
    assert "must name a `dragonwell_jdk` target, but svc:app is a `file`" in error_of(rule_runner)


def test_url_without_sha256_is_a_build_file_error(rule_runner: RuleRunner) -> None:
    write(rule_runner, "url='file:///x.tar.gz'")
    with pytest.raises(Exception) as exc:
        rule_runner.get_target(JDK)
    assert "sets `url` without `sha256`" in str(exc.value)


def test_served_jdk_helper_is_deterministic(tmp_path: Path) -> None:
    a: ServedJdk = serve_fake_jdk(tmp_path / "a")
    b: ServedJdk = serve_fake_jdk(tmp_path / "b")
    assert a.sha256 == b.sha256
