"""RuleRunner tests of the Occlum toolchain steps, against the test double in tests/occlum_double/."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from pants.core.goals.package import BuiltPackage
from pants.core.goals.run import RunRequest
from pants.engine.addresses import Address
from pants.engine.fs import DigestContents
from pants.engine.internals.scheduler import ExecutionError
from pants.testutil.rule_runner import RuleRunner

from cyclonedx_schema import schema_errors
from occlum.attestation.sbom import enclave_property
from occlum.attestation.verify import main as verify_main
from occlum.goals.run_image import OcclumJavaImageRunFieldSet
from occlum.toolchain.probe_tool import mrsigner_of_pem
from occlum.util_rules.staged_instance import OcclumJavaImageFieldSet
from occlum_double.make_install import make_fake_occlum_install
from occlum_testutil import REPO_ROOT, ServedJdk, fake_jdk, new_rule_runner, serve_fake_jdk
from signing_key import make_signing_key

ADDR = Address("svc", target_name="enclave")
TEMPLATE_KEY = REPO_ROOT / "tests" / "occlum_double" / "template_Enclave.pem"


@pytest.fixture(scope="module")
def installs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("opt")
    return {r: make_fake_occlum_install(root / f"occlum-{r}", r) for r in ("0.31.0", "0.20.0")}


@pytest.fixture
def served(tmp_path: Path) -> ServedJdk:
    return serve_fake_jdk(tmp_path / "mirror")


@pytest.fixture
def rule_runner(served: ServedJdk, tmp_path: Path) -> RuleRunner:
    rr = new_rule_runner(stage_only=False)
    jar = fake_jdk.make_jar(tmp_path / "app.jar", class_major=55)
    rr.write_files({"svc/app.jar": jar.read_bytes()})
    return rr


def configure(rr: RuleRunner, served: ServedJdk, install: Path | None, *extra: str, version: str | None = None) -> None:
    opts = [f"--dragonwell-known-versions=['{served.pin()}']"]
    if install is not None:
        opts.append(f"--occlum-executable-search-paths=['{install / 'build' / 'bin'}']")
        opts.append(f"--occlum-version={version or install.name.split('-')[1]}")
    rr.set_options([*opts, *extra], env_inherit={"PATH"})


def write(rr: RuleRunner, **fields: object) -> None:
    body = ", ".join(f"{k}={v!r}" for k, v in {"name": "enclave", "jdk": ":jdk", "jar": ":app", **fields}.items())
    rr.write_files(
        {"svc/BUILD": f"dragonwell_jdk(name='jdk')\nfile(name='app', source='app.jar')\nocclum_java_image({body})\n"}
    )


def package(rr: RuleRunner) -> tuple[BuiltPackage, dict]:
    built = rr.request(BuiltPackage, [OcclumJavaImageFieldSet.create(rr.get_target(ADDR))])
    return built, {fc.path: fc.content for fc in rr.request(DigestContents, [built.digest])}


def error(rr: RuleRunner) -> str:
    with pytest.raises(ExecutionError) as exc:
        package(rr)
    return str(exc.value)


def tar_members(data: bytes) -> dict:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
        return {m.name: (_read(tf, m) if m.isfile() else m) for m in tf.getmembers()}


def _read(tf: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tf.extractfile(member)
    assert f is not None, member.name
    return f.read()


def test_full_build_writes_package_and_measurements(rule_runner: RuleRunner, served: ServedJdk, installs: dict) -> None:
    configure(rule_runner, served, installs["0.31.0"])
    write(rule_runner)
    built, files = package(rule_runner)
    assert [a.relpath for a in built.artifacts] == [
        "svc/enclave.tar.gz",
        "svc/enclave.measurements.json",
        "svc/enclave.cdx.json",
        "svc/enclave.ra_config.json",
    ]
    meas = json.loads(files["svc/enclave.measurements.json"])
    assert len(meas["mrenclave"]) == 64 and int(meas["mrenclave"], 16) >= 0
    assert meas["mrsigner"] == mrsigner_of_pem(TEMPLATE_KEY.read_text())
    assert (meas["occlum_release"], meas["sgx_mode"], meas["debuggable"]) == ("0.31.0", "HW", True)
    members = tar_members(files["svc/enclave.tar.gz"])
    assert "enclave/build/lib/libocclum-libos.signed.so" in members
    assert members["enclave/.sgx_mode"].strip() == b"HW"
    assert json.loads(members["enclave/Occlum.json"])["entry_points"] == [
        "/usr/lib/jvm/java-11-alibaba-dragonwell/jre/bin"
    ]
    assert not any("/image/" in m for m in members)  # occlum package never ships image/
    # The CLI's absolute links into the install survive every step as links, not copies.
    link = members["enclave/build/bin/occlum-run"]
    assert link.issym() and link.linkname == str(installs["0.31.0"] / "build" / "bin" / "occlum-run")
    assert members["enclave/.__occlum_status"].strip() == b"built"
    # Written by the backend (toolchain/package_tool.py): in `occlum package`'s order, and bytes
    # that depend only on the contents (docs/security.md).
    with tarfile.open(fileobj=io.BytesIO(files["svc/enclave.tar.gz"]), mode="r:gz") as tf:
        infos = tf.getmembers()
    assert infos[0].name == "enclave/Occlum.json" and infos[-1].name == "enclave/.sgx_mode"
    assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in infos)
    assert {oct(m.mode) for m in infos if m.isfile()} <= {"0o644", "0o755"}


def test_the_verifier_files_belong_to_the_package(
    rule_runner: RuleRunner, served: ServedJdk, installs: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    key = tmp_path / "keys" / "enclave.pem"  # a release enclave needs a key of its own
    make_signing_key(key)
    configure(rule_runner, served, installs["0.31.0"], f"--occlum-sign-key={key}")
    write(rule_runner, debuggable=False, product_id=9, version_number=4)
    built, files = package(rule_runner)
    out = tmp_path / "dist"
    for path, content in files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_bytes(content)
    meas = json.loads(files["svc/enclave.measurements.json"])
    ra = json.loads(files["svc/enclave.ra_config.json"])
    assert ra["sgx_mrs"] == [
        {
            "mr_enclave": meas["mrenclave"],
            "mr_signer": meas["mrsigner"],
            "isv_prod_id": 9,
            "isv_svn": 4,
            "config_svn": 0,
            "debuggable": False,
        }
    ]
    sbom = json.loads(files["svc/enclave.cdx.json"])
    assert schema_errors(sbom) == []
    assert enclave_property(sbom, "mrenclave") == meas["mrenclave"]
    files_in_sbom = {c["name"] for c in sbom["components"] if c["type"] == "file"}
    # Every file of the measured image, the skeleton `occlum new` made included.
    assert "/usr/lib/jvm/java-11-alibaba-dragonwell/jre/bin/java" in files_in_sbom and "/lib/libz.so.1" in files_in_sbom
    assert verify_main([str(out / "svc/enclave.tar.gz")]) == 0, capsys.readouterr().out
    # Another build's package beside these records: caught.
    write(rule_runner, debuggable=False, product_id=9, version_number=5)
    _, files2 = package(rule_runner)
    (out / "svc/enclave.tar.gz").write_bytes(files2["svc/enclave.tar.gz"])
    capsys.readouterr()
    assert verify_main([str(out / "svc/enclave.tar.gz")]) == 1
    assert "package sha256 differs" in capsys.readouterr().out


def test_mrenclave_follows_the_config_not_the_key(
    rule_runner: RuleRunner, served: ServedJdk, installs: dict, tmp_path: Path
) -> None:
    configure(rule_runner, served, installs["0.31.0"])
    write(rule_runner)
    base = json.loads(package(rule_runner)[1]["svc/enclave.measurements.json"])
    write(rule_runner, max_num_of_threads=80)
    assert json.loads(package(rule_runner)[1]["svc/enclave.measurements.json"])["mrenclave"] != base["mrenclave"]
    key = tmp_path / "keys" / "enclave.pem"
    make_signing_key(key)
    configure(rule_runner, served, installs["0.31.0"], f"--occlum-sign-key={key}")
    write(rule_runner)
    built, files = package(rule_runner)
    meas = json.loads(files["svc/enclave.measurements.json"])
    assert meas["mrsigner"] == mrsigner_of_pem(key.read_text()) != base["mrsigner"]
    assert meas["mrenclave"] == base["mrenclave"]
    secret = key.read_bytes()
    body = b"".join(line for line in secret.splitlines() if not line.startswith(b"-----"))
    assert all(body[:64] not in content for content in files.values())


def test_release_build_refuses_the_template_key(
    rule_runner: RuleRunner, served: ServedJdk, installs: dict, tmp_path: Path
) -> None:
    configure(rule_runner, served, installs["0.31.0"])
    write(rule_runner, debuggable=False)
    msg = error(rule_runner)
    assert "signed with Occlum's template key" in msg and "[occlum].sign_key" in msg and "svc:enclave" in msg
    key = tmp_path / "k" / "release.pem"
    make_signing_key(key)
    configure(rule_runner, served, installs["0.31.0"], f"--occlum-sign-key={key}")
    meas = json.loads(package(rule_runner)[1]["svc/enclave.measurements.json"])
    assert meas["debuggable"] is False


@pytest.mark.parametrize(
    "value, words",
    [
        ("relative/key.pem", "must be an absolute path"),
        ("/nonexistent/key.pem", "cannot be used"),
    ],
)
def test_bad_sign_key(rule_runner: RuleRunner, served: ServedJdk, installs: dict, value: str, words: str) -> None:
    configure(rule_runner, served, installs["0.31.0"], f"--occlum-sign-key={value}")
    write(rule_runner)
    msg = error(rule_runner)
    assert "`[occlum].sign_key`" in msg and words in msg


def test_sign_key_inside_the_repo_is_refused(rule_runner: RuleRunner, served: ServedJdk, installs: dict) -> None:
    rule_runner.write_files({"keys/k.pem": TEMPLATE_KEY.read_text()})
    configure(rule_runner, served, installs["0.31.0"], f"--occlum-sign-key={rule_runner.build_root}/keys/k.pem")
    write(rule_runner)
    assert "points inside the repository" in error(rule_runner)


def test_weak_key_is_refused(rule_runner: RuleRunner, served: ServedJdk, installs: dict, tmp_path: Path) -> None:
    key = tmp_path / "weak.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "2048"], check=True, capture_output=True)
    configure(rule_runner, served, installs["0.31.0"], f"--occlum-sign-key={key}")
    write(rule_runner)
    assert "2048-bit RSA key with exponent 65537" in error(rule_runner)


def test_sign_tool_and_env_vars_reach_occlum_build(
    rule_runner: RuleRunner, served: ServedJdk, installs: dict, tmp_path: Path
) -> None:
    log = tmp_path / "sign-tool.log"
    tool = tmp_path / "hsm-sign"
    real = installs["0.31.0"] / "sgxsdk-tools" / "bin" / "x64" / "sgx_sign"
    tool.write_text(f'#!/bin/sh\necho "called with $1 by $HSM_USER" >> {log}\nexec {real} "$@"\n')
    tool.chmod(0o755)
    configure(
        rule_runner, served, installs["0.31.0"], f"--occlum-sign-tool={tool}", "--occlum-env-vars=['HSM_USER=ci-bot']"
    )
    write(rule_runner)
    package(rule_runner)
    assert log.read_text().strip() == "called with sign by ci-bot"


def test_sgx_mode_sim(rule_runner: RuleRunner, served: ServedJdk, installs: dict) -> None:
    configure(rule_runner, served, installs["0.31.0"], "--occlum-sgx-mode=SIM")
    write(rule_runner)
    files = package(rule_runner)[1]
    assert json.loads(files["svc/enclave.measurements.json"])["sgx_mode"] == "SIM"
    assert tar_members(files["svc/enclave.tar.gz"])["enclave/.sgx_mode"].strip() == b"SIM"


def test_runtime_libs_option(rule_runner: RuleRunner, served: ServedJdk, installs: dict) -> None:
    configure(rule_runner, served, installs["0.31.0"], "--occlum-runtime-libs=['libz.so.1', 'libnope.so']")
    write(rule_runner)
    msg = error(rule_runner)
    assert "'libnope.so' of `[occlum].runtime_libs` is not in the toolchain" in msg and "libz.so.1" in msg


def test_runtime_lib_collision_with_files(rule_runner: RuleRunner, served: ServedJdk, installs: dict) -> None:
    configure(rule_runner, served, installs["0.31.0"])
    rule_runner.write_files({"svc/z": b"not zlib"})
    rule_runner.write_files(
        {
            "svc/BUILD": "dragonwell_jdk(name='jdk')\nfile(name='app', source='app.jar')\nfile(name='z', source='z')\n"
            "occlum_java_image(name='enclave', jdk=':jdk', jar=':app', files={'/lib/libz.so.1': ':z'})\n"
        }
    )
    msg = error(rule_runner)
    assert "already has them: /lib/libz.so.1" in msg and "`files`" in msg


def test_release_mismatch(rule_runner: RuleRunner, served: ServedJdk, installs: dict) -> None:
    configure(rule_runner, served, installs["0.31.0"], version="0.30.1")
    write(rule_runner)
    msg = error(rule_runner)
    assert "is release 0.31.0" in msg and "`[occlum].version` is 0.30.1" in msg


def test_no_toolchain(rule_runner: RuleRunner, served: ServedJdk, tmp_path: Path) -> None:
    configure(rule_runner, served, None, f"--occlum-executable-search-paths=['{tmp_path}/none']")
    write(rule_runner)
    msg = error(rule_runner)
    assert "no `occlum` CLI was found" in msg and f"{tmp_path}/none" in msg and "stage_only" in msg
    # The search path first, then Occlum's standard install folder.
    assert msg.index(f"{tmp_path}/none") < msg.index("/opt/occlum/build/bin"), msg
    configure(
        rule_runner, served, None, f"--occlum-executable-search-paths=['{tmp_path}/none']", "--occlum-stage-only=auto"
    )
    built, files = package(rule_runner)
    assert "svc/enclave/Occlum.json" in files and built.artifacts[0].relpath == "svc/enclave"


def test_stage_only_yes_skips_an_installed_toolchain(
    rule_runner: RuleRunner, served: ServedJdk, installs: dict
) -> None:
    configure(rule_runner, served, installs["0.31.0"], "--occlum-stage-only=yes")
    write(rule_runner)
    assert "svc/enclave/image/usr/lib/spring/app.jar" in package(rule_runner)[1]


def test_occlum_0_20_measurements_via_sgx_sign_dump(rule_runner: RuleRunner, served: ServedJdk, installs: dict) -> None:
    configure(rule_runner, served, installs["0.20.0"])
    write(rule_runner)
    files = package(rule_runner)[1]
    meas = json.loads(files["svc/enclave.measurements.json"])
    assert meas["occlum_release"] == "0.20.0"
    assert meas["mrsigner"] == mrsigner_of_pem(TEMPLATE_KEY.read_text())
    configure(rule_runner, served, installs["0.20.0"], "--occlum-sgx-mode=SIM")
    assert "cannot package a SIM instance" in error(rule_runner)


def test_run_request(rule_runner: RuleRunner, served: ServedJdk, installs: dict) -> None:
    configure(rule_runner, served, installs["0.31.0"])
    write(rule_runner, main_args=["8080"])
    tgt = rule_runner.get_target(ADDR)
    req = rule_runner.request(RunRequest, [OcclumJavaImageRunFieldSet.create(tgt)])
    occlum = str(installs["0.31.0"] / "build" / "bin" / "occlum")
    assert req.args[3:] == (
        "{chroot}/occlum_instance",
        occlum,
        "run",
        "/usr/lib/jvm/java-11-alibaba-dragonwell/jre/bin/java",
        "-XX:-UseCompressedOops",
        "-Dos.name=Linux",
        "-Xmx512m",
        "-XX:MaxMetaspaceSize=64m",
        "-jar",
        "/usr/lib/spring/app.jar",
        "8080",
    )


def test_check_reproducible_passes_for_a_deterministic_toolchain(
    rule_runner: RuleRunner, served: ServedJdk, installs: dict
) -> None:
    from occlum.goals.check_reproducible import CheckReproducible

    write(rule_runner)
    args = [
        f"--dragonwell-known-versions=['{served.pin()}']",
        f"--occlum-executable-search-paths=['{installs['0.31.0'] / 'build' / 'bin'}']",
        "--occlum-stage-only=no",
    ]
    result = rule_runner.run_goal_rule(CheckReproducible, global_args=args, args=["svc:enclave"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "svc:enclave: reproducible (Occlum steps re-run): package sha256" in result.stdout


def test_check_reproducible_names_what_differs(
    rule_runner: RuleRunner, served: ServedJdk, installs: dict, tmp_path: Path
) -> None:
    from occlum.goals.check_reproducible import CheckReproducible

    # A signing tool that stamps each signature with the time: the classic non-reproducible step.
    real = installs["0.31.0"] / "sgxsdk-tools" / "bin" / "x64" / "sgx_sign"
    tool = tmp_path / "stamping-sign"
    stamp = "import sys,time; p=sys.argv[1]; open(p, 'ab').write(str(time.time_ns()).encode())"
    tool.write_text(f'#!/bin/sh\n{real} "$@" || exit $?\n{sys.executable} -c "{stamp}" "$9"\n')
    tool.chmod(0o755)
    write(rule_runner)
    args = [
        f"--dragonwell-known-versions=['{served.pin()}']",
        f"--occlum-executable-search-paths=['{installs['0.31.0'] / 'build' / 'bin'}']",
        "--occlum-stage-only=no",
        f"--occlum-sign-tool={tool}",
    ]
    result = rule_runner.run_goal_rule(CheckReproducible, global_args=args, args=["svc:enclave"])
    assert result.exit_code == 1
    assert "svc:enclave: NOT reproducible:" in result.stdout
    assert "enclave/build/lib/libocclum-libos.signed.so: file" in result.stdout
