"""RuleRunner tests of `pants package` for `occlum_java_image`: every field and option changes the output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pants.engine.addresses import Address
from pants.engine.internals.scheduler import ExecutionError
from pants.engine.target import InferredDependencies
from pants.testutil.rule_runner import RuleRunner

from occlum.target_types import OcclumJavaImageReferencesFieldSet
from occlum.util_rules.dependency_inference import InferOcclumImageReferences
from occlum.util_rules.staged_instance import OcclumJavaImageFieldSet
from occlum_testutil import Package, ServedJdk, fake_jdk, new_rule_runner, package_image, serve_fake_jdk

JRE = "/usr/lib/jvm/java-11-alibaba-dragonwell/jre"
ADDR = Address("svc", target_name="enclave")


@pytest.fixture
def served(tmp_path: Path) -> ServedJdk:
    return serve_fake_jdk(tmp_path / "mirror")


@pytest.fixture
def rule_runner(served: ServedJdk, tmp_path: Path) -> RuleRunner:
    rr = new_rule_runner()
    rr.set_options([f"--dragonwell-known-versions=['{served.pin()}']"], env_inherit={"PATH"})
    jar = fake_jdk.make_jar(tmp_path / "app.jar", main_class="app.Main", class_major=55)
    rr.write_files({"svc/app.jar": jar.read_bytes(), "svc/application.yaml": b"greeting: hi\n"})
    return rr


def write_image(rr: RuleRunner, **fields: object) -> None:
    args = {"name": "enclave", "jdk": ":jdk", "jar": ":app", **fields}
    body = ", ".join(f"{k}={v!r}" for k, v in args.items())
    rr.write_files(
        {
            "svc/BUILD": (
                'dragonwell_jdk(name="jdk")\n'
                'file(name="app", source="app.jar")\n'
                'file(name="config", source="application.yaml")\n'
                f"occlum_java_image({body})\n"
            )
        }
    )


def build(rr: RuleRunner, **fields: object) -> Package:
    write_image(rr, **fields)
    return package_image(rr, ADDR)


def build_error(rr: RuleRunner, **fields: object) -> str:
    write_image(rr, **fields)
    with pytest.raises(ExecutionError) as exc:
        package_image(rr, ADDR)
    return str(exc.value)


def test_default_package_layout_config_and_summary(rule_runner: RuleRunner, served: ServedJdk) -> None:
    pkg = build(rule_runner)
    assert pkg.root == "svc/enclave"
    paths = pkg.image_paths()
    assert {f"{JRE}/bin/java", f"{JRE}/lib/server/libjvm.so", f"{JRE}/release", "/usr/lib/spring/app.jar"} <= paths
    # Links inside the JDK stay links.
    assert pkg.symlinks[f"svc/enclave/image{JRE}/lib/libjsig.so"] == "server/libjsig.so"
    cfg = pkg.config
    assert cfg["entry_points"] == [f"{JRE}/bin"]
    assert cfg["env"] == {
        "default": [f"LD_LIBRARY_PATH={JRE}/lib/server:{JRE}/lib:{JRE}/../lib"],
        "untrusted": [],
    }
    # Derived from the default jvm_options (-Xmx512m -XX:MaxMetaspaceSize=64m) and 64 Java threads.
    assert cfg["resource_limits"] == {
        "kernel_space_heap_size": "64MB",
        "kernel_space_stack_size": "1MB",
        "user_space_size": "1785MB",
        "max_num_of_threads": 64,
    }
    assert cfg["process"] == {"default_stack_size": "4MB", "default_heap_size": "32MB", "default_mmap_size": "1729MB"}
    memory = summary_of(pkg)["memory"]
    assert memory["limits"]["user_space_size"]["value"] == "1785MB"
    assert "heap 512MB" in memory["limits"]["default_mmap_size"]["how"]
    assert memory["enclave_memory_estimate"] == "1913MB"
    assert "feature" in cfg  # 0.31.0 requires it
    summary = pkg.summary
    assert summary["occlum_release"] == "0.31.0"
    assert summary["jdk"]["java_version"] == "11.0.16"
    assert summary["jdk"]["libc"] == "musl"
    assert summary["jdk"]["sha256"] == served.sha256
    assert summary["jar"]["main_class"] == "app.Main"
    assert summary["command"] == [
        f"{JRE}/bin/java",
        "-XX:-UseCompressedOops",
        "-Dos.name=Linux",
        "-Xmx512m",
        "-XX:MaxMetaspaceSize=64m",
        "-jar",
        "/usr/lib/spring/app.jar",
    ]


@pytest.mark.parametrize(
    "alias, section, value",
    [
        ("user_space_size", "resource_limits", "2GB"),
        ("kernel_space_heap_size", "resource_limits", "128MB"),
        ("kernel_space_stack_size", "resource_limits", "2MB"),
        ("default_heap_size", "process", "128MB"),
        ("default_stack_size", "process", "8MB"),
        ("default_mmap_size", "process", "1GB"),
        ("user_space_max_size", "resource_limits", "4GB"),
        ("kernel_space_heap_max_size", "resource_limits", "256MB"),
    ],
)
def test_each_size_field_reaches_occlum_json(rule_runner: RuleRunner, alias: str, section: str, value: str) -> None:
    assert build(rule_runner, **{alias: value}).config[section][alias] == value


def test_a_hand_set_heap_enters_the_derived_user_space(rule_runner: RuleRunner) -> None:
    # One pool on 0.31.0: the JVM's mmaps 1729MB + ELF 20MB + default_heap_size + default_stack 4MB.
    assert build(rule_runner).config["resource_limits"]["user_space_size"] == "1785MB"
    config = build(rule_runner, default_heap_size="512MB").config
    assert config["resource_limits"]["user_space_size"] == "2265MB"
    assert config["process"]["default_heap_size"] == "512MB"


def test_maxima_need_the_release_that_has_them(rule_runner: RuleRunner, served: ServedJdk) -> None:
    rule_runner.set_options(
        [f"--dragonwell-known-versions=['{served.pin()}']", "--occlum-version=0.29.7"], env_inherit={"PATH"}
    )
    msg = build_error(rule_runner, user_space_max_size="4GB")
    assert "The `user_space_max_size` field of svc:enclave needs Occlum 0.30.0 or later" in msg, msg
    # kernel_space_heap_max_size is there from 0.29.4.
    config = build(rule_runner, kernel_space_heap_max_size="128MB").config
    assert config["resource_limits"]["kernel_space_heap_max_size"] == "128MB"


def test_occlum_0_31_java_demo_limits_as_a_target(rule_runner: RuleRunner) -> None:
    # The Occlum.json values of v0.31.0:demos/java/run_java_on_occlum.sh (the rest from its template);
    # the model counts direct memory at its bound, so the demo's JVM options state it.
    config = build(
        rule_runner,
        jvm_options=["-Xmx512m", "-XX:MaxMetaspaceSize=64m", "-XX:MaxDirectMemorySize=128m"],
        user_space_size="1MB",
        user_space_max_size="1680MB",
        kernel_space_heap_size="1MB",
        kernel_space_heap_max_size="64MB",
        max_num_of_threads=64,
        default_heap_size="256MB",
        default_mmap_size="100MB",  # the template's value, which the demo keeps
    ).config
    assert config["resource_limits"] == {
        "kernel_space_heap_size": "1MB",
        "kernel_space_stack_size": "1MB",
        "user_space_size": "1MB",
        "user_space_max_size": "1680MB",
        "kernel_space_heap_max_size": "64MB",
        "max_num_of_threads": 64,
    }
    assert config["process"] == {
        "default_stack_size": "4MB",
        "default_heap_size": "256MB",
        "default_mmap_size": "100MB",
    }


def test_sizes_are_written_canonically(rule_runner: RuleRunner) -> None:
    assert build(rule_runner, user_space_size="2048MB").config["resource_limits"]["user_space_size"] == "2GB"


def summary_of(pkg: Package) -> dict:
    return pkg.summary


def test_hand_set_limits_are_reported_as_such(rule_runner: RuleRunner) -> None:
    memory = build(rule_runner, user_space_size="2GB").summary["memory"]
    assert memory["limits"]["user_space_size"] == {"value": "2GB", "how": "set by hand"}


def test_limit_too_small_for_the_jvm_is_an_error_with_the_sum(rule_runner: RuleRunner) -> None:
    msg = build_error(rule_runner, user_space_size="1GB")
    assert "The memory limits of svc:enclave cannot hold its JVM (Occlum 0.31.0)" in msg
    assert "the `user_space_size` field: user_space_size is 1024MB, but the JVM options need 1785MB" in msg
    assert "JVM mmaps 1729MB + ELF 20MB + default_heap_size 32MB + default_stack_size 4MB = 1785MB" in msg
    assert "Raise user_space_size to at least 1785MB" in msg


def test_threads_below_the_estimate_is_an_error(rule_runner: RuleRunner) -> None:
    msg = build_error(rule_runner, max_num_of_threads=16)
    assert "the `max_num_of_threads` field: max_num_of_threads is 16, but the thread estimate is 64" in msg


def test_far_larger_limit_is_a_warning_in_the_summary(rule_runner: RuleRunner) -> None:
    warnings = build(rule_runner, user_space_size="8GB").summary["memory"]["warnings"]
    assert any("user_space_size is 8192MB, far more than the 1785MB" in w and "EDMM" in w for w in warnings)


def test_compressed_oops_is_a_warning(rule_runner: RuleRunner) -> None:
    warnings = build(rule_runner, jvm_options=["-Xmx512m", "-XX:+UseCompressedOops"]).summary["memory"]["warnings"]
    assert any("-XX:+UseCompressedOops" in w for w in warnings)


def test_sizing_fields_change_the_derived_limits(rule_runner: RuleRunner) -> None:
    base = build(rule_runner).config
    more_threads = build(rule_runner, java_threads=128).config
    assert more_threads["resource_limits"]["max_num_of_threads"] == 128
    assert more_threads["process"]["default_mmap_size"] != base["process"]["default_mmap_size"]
    children = build(rule_runner, child_processes=2).config
    assert children["resource_limits"]["max_num_of_threads"] == 66
    no_headroom = build(rule_runner, memory_headroom=0).config
    assert no_headroom["process"]["default_mmap_size"] == "1571MB"
    bigger_heap = build(rule_runner, jvm_options=["-Xmx1g", "-XX:MaxMetaspaceSize=64m"]).config
    assert bigger_heap["resource_limits"]["user_space_size"] != base["resource_limits"]["user_space_size"]


def test_bad_jvm_option_is_an_error(rule_runner: RuleRunner) -> None:
    msg = build_error(rule_runner, jvm_options=["-Xmx512q"])
    assert "The `jvm_options` field in target svc:enclave has a bad value" in msg and "-Xmx" in msg


def test_threads_and_metadata_fields(rule_runner: RuleRunner) -> None:
    cfg = build(rule_runner, max_num_of_threads=96, debuggable=False, product_id=7, version_number=3).config
    assert cfg["resource_limits"]["max_num_of_threads"] == 96
    assert cfg["metadata"]["debuggable"] is False
    assert cfg["metadata"]["product_id"] == 7
    assert cfg["metadata"]["version_number"] == 3
    assert build(rule_runner).summary["debuggable"] is True


def test_env_and_untrusted_env(rule_runner: RuleRunner) -> None:
    cfg = build(rule_runner, env=["SPRING_PROFILES_ACTIVE=prod"], untrusted_env=["PORT"]).config
    assert cfg["env"]["default"] == [
        f"LD_LIBRARY_PATH={JRE}/lib/server:{JRE}/lib:{JRE}/../lib",
        "SPRING_PROFILES_ACTIVE=prod",
    ]
    assert cfg["env"]["untrusted"] == ["PORT"]
    # A user LD_LIBRARY_PATH replaces the default one.
    cfg = build(rule_runner, env=["LD_LIBRARY_PATH=/opt/lib"]).config
    assert cfg["env"]["default"] == ["LD_LIBRARY_PATH=/opt/lib"]


def test_jvm_options_and_main_args_shape_the_command(rule_runner: RuleRunner) -> None:
    summary = build(rule_runner, jvm_options=["-Xmx1g", "-XX:+UseCompressedOops"], main_args=["--port", "9000"]).summary
    assert summary["command"] == [
        f"{JRE}/bin/java",
        "-Dos.name=Linux",
        "-Xmx1g",
        "-XX:+UseCompressedOops",
        "-jar",
        "/usr/lib/spring/app.jar",
        "--port",
        "9000",
    ]


def test_jdk_dir_and_jar_dir_move_files_and_config(rule_runner: RuleRunner) -> None:
    pkg = build(rule_runner, jdk_dir="/opt/jdk", jar_dir="/srv")
    assert {"/opt/jdk/bin/java", "/srv/app.jar"} <= pkg.image_paths()
    assert not any(p.startswith("/usr/lib/jvm") for p in pkg.image_paths())
    assert pkg.config["entry_points"] == ["/opt/jdk/bin"]
    assert pkg.config["env"]["default"][0] == "LD_LIBRARY_PATH=/opt/jdk/lib/server:/opt/jdk/lib:/opt/jdk/../lib"
    assert pkg.summary["command"][-1] == "/srv/app.jar"


def test_files_field_places_files(rule_runner: RuleRunner) -> None:
    pkg = build(rule_runner, files={"/etc/app/application.yml": ":config"})
    assert pkg.files["svc/enclave/image/etc/app/application.yml"] == b"greeting: hi\n"


def test_files_collision_with_jar_is_an_error(rule_runner: RuleRunner) -> None:
    msg = build_error(rule_runner, files={"/usr/lib/spring/app.jar": ":config"})
    assert "path(s) claimed twice" in msg and "/usr/lib/spring/app.jar" in msg and "`files`" in msg


def test_files_collision_with_a_jdk_symlink_is_an_error(rule_runner: RuleRunner) -> None:
    # The fake JDK has lib/libjsig.so -> server/libjsig.so: a file there would replace the link.
    link = "/usr/lib/jvm/java-11-alibaba-dragonwell/jre/lib/libjsig.so"
    msg = build_error(rule_runner, files={link: ":config"})
    assert "path(s) claimed twice" in msg, msg
    assert f"image{link}: from the JDK of svc:jdk and from `files` entry '{link}'" in msg, msg


def test_files_under_a_jdk_directory_symlink_is_an_error(rule_runner: RuleRunner) -> None:
    # A file placed *through* a symlinked directory of the JDK would need the link to be a folder.
    msg = build_error(rule_runner, files={"/usr/lib/jvm/java-11-alibaba-dragonwell/jre/lib/libjsig.so/x": ":config"})
    assert "path(s) claimed twice" in msg and "a symlink from the JDK of svc:jdk" in msg, msg


def test_files_through_a_jdk_directory_symlink_is_an_error(rule_runner: RuleRunner, tmp_path: Path) -> None:
    # A JDK whose `legal` is a link to a folder: a `files` entry below it cannot be placed.
    linked = serve_fake_jdk(
        tmp_path / "linked", extra_members=[fake_jdk.TarMember("legal", kind="symlink", linkname="conf")]
    )
    rule_runner.set_options([f"--dragonwell-known-versions=['{linked.pin()}']"], env_inherit={"PATH"})
    msg = build_error(rule_runner, files={"/usr/lib/jvm/java-11-alibaba-dragonwell/jre/legal/x": ":config"})
    assert "path(s) claimed twice" in msg, msg
    assert "jre/legal: a symlink from the JDK of svc:jdk, but a folder from `files` entry" in msg, msg


def test_jdk_dir_plus_the_jdks_deepest_member_is_bounded(rule_runner: RuleRunner) -> None:
    # The fake JDK's deepest file is lib/server/libjvm.so: 3 components under jdk_dir.
    at_bound = "/" + "/".join(f"d{i}" for i in range(13))
    assert f"{at_bound}/lib/server/libjvm.so" in build(rule_runner, jdk_dir=at_bound).image_paths()
    over = at_bound + "/x"
    msg = build_error(rule_runner, jdk_dir=over)
    held = f"The image of svc:enclave would hold '{over}/lib/server/libjvm.so', 17 components deep"
    assert f"{held}, from the JDK of svc:jdk; at most 16" in msg, msg
    assert f"Fix: set a `jdk_dir` of fewer components on svc:enclave (now '{over}')." in msg


def test_files_using_a_path_as_file_and_folder_is_an_error(rule_runner: RuleRunner) -> None:
    msg = build_error(rule_runner, files={"/etc/app": ":config", "/etc/app/b.yml": ":config"})
    assert "uses a path both as a file and as a folder: '/etc/app' is a file, but '/etc/app/b.yml' puts" in msg, msg


def test_many_files_entries_share_one_target(rule_runner: RuleRunner) -> None:
    files = {f"/etc/app/{i}.yml": ":config" for i in range(300)}
    pkg = build(rule_runner, files=files)
    assert all(pkg.files[f"svc/enclave/image/etc/app/{i}.yml"] == b"greeting: hi\n" for i in range(300))


def test_a_default_output_path_with_a_format_character_is_refused(rule_runner: RuleRunner) -> None:
    # Pants lets a target name hold U+202E; the file names the backend derives from it may not.
    write_image(rule_runner, name="enc\u202elave")
    with pytest.raises(ExecutionError) as exc:
        package_image(rule_runner, Address("svc", target_name="enc\u202elave"))
    msg = str(exc.value)
    # The value is quoted with the character escaped, so the message shows what is there.
    assert "The `output_path` of target svc:enc\u202elave is 'svc/enc\\u202elave' (unset, it is built from" in msg, msg
    assert "RIGHT-TO-LEFT OVERRIDE (U+202E)" in msg and "Rename the target" in msg


def test_mounts_field(rule_runner: RuleRunner) -> None:
    cfg = build(rule_runner, mounts=[{"target": "/data", "type": "hostfs", "source": "./data"}]).config
    assert cfg["mount"][-1] == {"target": "/data", "type": "hostfs", "source": "./data"}


def test_output_path(rule_runner: RuleRunner) -> None:
    pkg = build(rule_runner, output_path="out/enclave-x")
    assert pkg.root == "out/enclave-x" and "out/enclave-x.cdx.json" in pkg.files


def test_occlum_version_option_selects_the_generation(rule_runner: RuleRunner, served: ServedJdk) -> None:
    rule_runner.set_options(
        [f"--dragonwell-known-versions=['{served.pin()}']", "--occlum-version=0.20.0"], env_inherit={"PATH"}
    )
    pkg = build(rule_runner)
    assert "feature" not in pkg.config and "enable_kss" not in pkg.config["metadata"]
    assert pkg.summary["occlum_release"] == "0.20.0"
    msg = build_error(rule_runner, mounts=[{"target": "/data", "type": "ramfs"}])
    assert "Occlum 0.20.0 ignores the `mount` list" in msg and "`[occlum].version`" in msg


def test_unknown_occlum_release(rule_runner: RuleRunner, served: ServedJdk) -> None:
    rule_runner.set_options(
        [f"--dragonwell-known-versions=['{served.pin()}']", "--occlum-version=0.19.0"], env_inherit={"PATH"}
    )
    msg = build_error(rule_runner)
    assert "`[occlum].version` is '0.19.0'" in msg and "0.31.0" in msg


def test_mirror_option_is_tried_first(rule_runner: RuleRunner, served: ServedJdk, tmp_path: Path) -> None:
    broken_pin = served.pin().replace(served.url, "file:///nonexistent/" + served.path.name)
    mirror = f"file://{served.path.parent}/{{filename}}"
    rule_runner.set_options(
        [f"--dragonwell-known-versions=['{broken_pin}']", f"--dragonwell-mirrors=['{mirror}']"], env_inherit={"PATH"}
    )
    assert build(rule_runner).summary["jdk"]["sha256"] == served.sha256
    rule_runner.set_options([f"--dragonwell-known-versions=['{broken_pin}']"], env_inherit={"PATH"})
    msg = build_error(rule_runner)
    assert "could not fetch Dragonwell 11.0.16.12.8" in msg and "/nonexistent/" in msg and "[dragonwell].mirrors" in msg


def test_fetch_env_vars_reach_the_download(rule_runner: RuleRunner, served: ServedJdk) -> None:
    # An http:// URL through a proxy that refuses connections: only the passed env var can say so.
    pin = served.pin().replace(served.url, "http://jdk.invalid/jdk.tar.gz")
    rule_runner.set_options(
        [f"--dragonwell-known-versions=['{pin}']", "--dragonwell-fetch-env-vars=['http_proxy=http://127.0.0.1:9']"],
        env_inherit={"PATH"},
    )
    assert "Connection refused" in build_error(rule_runner)


def test_sha256_mismatch_is_refused(rule_runner: RuleRunner, served: ServedJdk) -> None:
    pin = served.pin().replace(served.sha256, "0" * 64)
    rule_runner.set_options([f"--dragonwell-known-versions=['{pin}']"], env_inherit={"PATH"})
    msg = build_error(rule_runner)
    assert f"sha256 mismatch: got {served.sha256}" in msg and "pinned " + "0" * 64 in msg


def test_bad_known_versions_entry(rule_runner: RuleRunner) -> None:
    rule_runner.set_options(["--dragonwell-known-versions=['11|standard|musl']"], env_inherit={"PATH"})
    assert "has 3 fields, but needs 7" in build_error(rule_runner)


def test_dependency_inference_links_jdk_jar_and_files(rule_runner: RuleRunner) -> None:
    write_image(rule_runner, files={"/etc/a.yml": ":config"})
    tgt = rule_runner.get_target(ADDR)
    inferred = rule_runner.request(
        InferredDependencies, [InferOcclumImageReferences(OcclumJavaImageReferencesFieldSet.create(tgt))]
    )
    assert set(inferred.include) == {
        Address("svc", target_name="jdk"),
        Address("svc", target_name="app"),
        Address("svc", target_name="config"),
    }


def test_a_files_entry_naming_no_target_is_named_with_its_path(rule_runner: RuleRunner) -> None:
    # All entries resolve in one request; when that fails, the bad one is found and named.
    files = {"/etc/a.yml": ":config", "/etc/b.yml": ":nope", "/etc/c.yml": ":config"}
    expected = (
        "The `files` field of svc:enclave is ':nope', which does not name an existing target. It must be "
        "the address of a `file` target for /etc/b.yml."
    )
    assert expected in build_error(rule_runner, files=files)
    tgt = rule_runner.get_target(ADDR)
    with pytest.raises(ExecutionError) as exc:
        rule_runner.request(
            InferredDependencies, [InferOcclumImageReferences(OcclumJavaImageReferencesFieldSet.create(tgt))]
        )
    assert expected in str(exc.value)


def test_field_set_is_registered_for_package(rule_runner: RuleRunner) -> None:
    write_image(rule_runner)
    assert OcclumJavaImageFieldSet.is_applicable(rule_runner.get_target(ADDR))


def test_no_copy_bom_for_releases_without_copy_bom(rule_runner: RuleRunner, served: ServedJdk) -> None:
    # copy_bom appears in Occlum 0.24.1.
    for release, has_bom in (("0.24.0", False), ("0.24.1", True)):
        rule_runner.set_options(
            [f"--dragonwell-known-versions=['{served.pin()}']", f"--occlum-version={release}"], env_inherit={"PATH"}
        )
        pkg = build(rule_runner)
        assert ("svc/enclave/enclave.copy_bom.yaml" in pkg.files) is has_bom, release


def test_summary_says_what_occlum_new_adds(rule_runner: RuleRunner, served: ServedJdk) -> None:
    adds = build(rule_runner).summary["added_by_occlum_new"]
    assert adds["paths"] == ["/lib/libz.so.1"] and "not in this staged image/" in adds["note"]
    rule_runner.set_options(
        [f"--dragonwell-known-versions=['{served.pin()}']", "--occlum-runtime-libs=['libz.so.1', 'libgomp.so.1']"],
        env_inherit={"PATH"},
    )
    pkg = build(rule_runner)
    assert pkg.summary["added_by_occlum_new"]["paths"] == ["/lib/libz.so.1", "/lib/libgomp.so.1"]
    assert "/lib/libz.so.1" not in pkg.image_paths()


def test_staged_instance_has_a_copy_bom_listing_every_file_with_its_hash(rule_runner: RuleRunner) -> None:
    import hashlib

    import yaml

    pkg = build(rule_runner)
    bom = yaml.safe_load(pkg.files["svc/enclave/enclave.copy_bom.yaml"])
    listed = {}
    for target in bom["targets"]:
        for copy in target.get("copy", []):
            for f in copy.get("files", []):
                listed[f"{target['target'].rstrip('/')}/{f['name']}"] = f["hash"]
    image_files = {p[len("svc/enclave/image") :]: c for p, c in pkg.files.items() if p.startswith("svc/enclave/image/")}
    assert listed == {p: hashlib.sha256(c).hexdigest().upper() for p, c in image_files.items()}
    # Literal sources relative to an instance made beside image/ (copy_bom checks a hash before
    # it expands variables, so no ${VAR}).
    sources = {c["from"] for t in bom["targets"] for c in t.get("copy", [])}
    assert sources and all(s.startswith("../image/") for s in sources), sources
    links = {(t["target"], link["linkname"]): link["src"] for t in bom["targets"] for link in t.get("createlinks", [])}
    assert links == {("/usr/lib/jvm/java-11-alibaba-dragonwell/jre/lib", "libjsig.so"): "server/libjsig.so"}


def test_a_staged_image_gets_an_sbom_that_says_it_was_not_measured(rule_runner: RuleRunner) -> None:
    import hashlib

    from cyclonedx_schema import schema_errors
    from occlum.attestation.sbom import enclave_property

    pkg = build(rule_runner, files={"/etc/app/application.yaml": ":config"}, product_id=3)
    sbom = json.loads(pkg.files["svc/enclave.cdx.json"])
    assert schema_errors(sbom) == []
    assert enclave_property(sbom, "measured") == "false" and enclave_property(sbom, "mrenclave") is None
    assert enclave_property(sbom, "isv_prod_id") == "3"
    hashes = {c["name"]: c["hashes"][0]["content"] for c in sbom["components"] if c["type"] == "file" and "hashes" in c}
    image = {p[len("svc/enclave/image") :]: c for p, c in pkg.files.items() if p.startswith("svc/enclave/image/")}
    assert hashes == {p: hashlib.sha256(c).hexdigest() for p, c in image.items()}
    # Reproducible: the same inputs, the same bytes.
    assert (
        build(rule_runner, files={"/etc/app/application.yaml": ":config"}, product_id=3).files["svc/enclave.cdx.json"]
        == pkg.files["svc/enclave.cdx.json"]
    )
