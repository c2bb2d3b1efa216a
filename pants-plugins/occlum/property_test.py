"""Property tests: every BUILD value the `occlum_java_image` fields accept gives an Occlum.json that
both the plugin's validator and the Occlum test double's independent checker accept, for every
supported release; every refused value is refused with the catalogue's error shape.

No RuleRunner: the test walks the same pure functions the rules call, in the same order as
`stage_occlum_instance` / `generate_occlum_config` (field validation -> plan_memory ->
OcclumConfigInputs -> render_occlum_json -> validate_config -> json.dumps(indent=4)).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import re
import shutil
import tempfile
from collections import Counter
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pants.engine.addresses import Address
from pants.engine.target import InvalidFieldException

from occlum.config.model import OcclumConfigInputs, UnsupportedFeatureError, default_mounts, render_occlum_json
from occlum.config.releases import SUPPORTED_RELEASES, has_sefs_cache_size, honours_mounts
from occlum.config.sizes import GB, MB, format_size
from occlum.config.validation import validate_config
from occlum.sizing.plan import KNOBS, MemoryPlan, OcclumMemoryError, plan_memory
from occlum.target_types import (
    OcclumJavaImageChildProcessesField,
    OcclumJavaImageDebuggableField,
    OcclumJavaImageDefaultHeapSizeField,
    OcclumJavaImageDefaultMmapSizeField,
    OcclumJavaImageDefaultStackSizeField,
    OcclumJavaImageEnvField,
    OcclumJavaImageJavaThreadsField,
    OcclumJavaImageJdkDirField,
    OcclumJavaImageJvmOptionsField,
    OcclumJavaImageKernelSpaceHeapSizeField,
    OcclumJavaImageKernelSpaceStackSizeField,
    OcclumJavaImageMaxNumOfThreadsField,
    OcclumJavaImageMemoryHeadroomField,
    OcclumJavaImageMountsField,
    OcclumJavaImageProductIdField,
    OcclumJavaImageUntrustedEnvField,
    OcclumJavaImageUserSpaceSizeField,
    OcclumJavaImageVersionNumberField,
)
from occlum.util_rules.staged_instance import enclave_env, ld_library_path

REPO = Path(__file__).resolve().parents[2]
ADDRESS = Address("svc", target_name="enclave")
DOUBLE_RELEASES = SUPPORTED_RELEASES  # the double follows docs/occlum-contract.md §1.5 for all of them
assert "0.20.0" in DOUBLE_RELEASES and "0.31.0" in DOUBLE_RELEASES

SIZE_FIELDS = {
    "user_space_size": OcclumJavaImageUserSpaceSizeField,
    "kernel_space_heap_size": OcclumJavaImageKernelSpaceHeapSizeField,
    "kernel_space_stack_size": OcclumJavaImageKernelSpaceStackSizeField,
    "default_heap_size": OcclumJavaImageDefaultHeapSizeField,
    "default_stack_size": OcclumJavaImageDefaultStackSizeField,
    "default_mmap_size": OcclumJavaImageDefaultMmapSizeField,
}


# ---------------------------------------------------------------------------------------------
# The test double's config checker (tests/occlum_double/occlum, `gen_internal_conf`), one module
# per release: the script reads its release from <install>/include/occlum_version.h at import.
# ---------------------------------------------------------------------------------------------

_DOUBLES: dict = {}
_TMP = Path(tempfile.mkdtemp(prefix="occlum-property-"))
atexit.register(shutil.rmtree, _TMP, True)


def limits_of(plan: MemoryPlan) -> dict[str, Any]:
    return {k: plan.limits.get(k) for k in KNOBS}


def _double(release: str) -> ModuleType:
    if release not in _DOUBLES:
        from occlum_double.make_install import make_fake_occlum_install

        install = make_fake_occlum_install(_TMP / "opt" / release, release)
        script = install / "build" / "bin" / "occlum"
        name = f"occlum_double_{release.replace('.', '_')}"
        loader = SourceFileLoader(name, str(script))
        spec = importlib.util.spec_from_loader(name, loader)
        assert spec is not None
        mod = importlib.util.module_from_spec(spec)
        loader.exec_module(mod)
        assert mod.VERSION == release, (mod.VERSION, release)
        _DOUBLES[release] = mod
    return _DOUBLES[release]


def double_verdict(release: str, content: bytes) -> Optional[str]:
    """None when the double's `occlum build` config step accepts the bytes, else its message."""
    mod = _double(release)
    path = _TMP / f"Occlum-{release}.json"
    path.write_bytes(content)
    try:
        msg, result = mod.gen_internal_conf(str(path), "11-22-33-44", "55-66-77-88", "NO")
    except mod.RustPanic as e:  # Class A: serde rejected the document
        return f"panic: {e}"
    if result is None:  # Class B: a message on stdout, outputs left empty
        return f"refused: {msg}"
    xml, internal = result
    assert xml.startswith("<EnclaveConfiguration>") and json.loads(internal)
    return None


def double_runtime_verdict(release: str, doc: dict) -> Optional[str]:
    """The double's `occlum run`-time LibOS config checks, on an instance dir that has the mount points."""
    mod = _double(release)
    inst = Path(tempfile.mkdtemp(dir=_TMP))
    (inst / "image").mkdir()
    for m in doc["mount"] if honours_mounts(release) else ():
        if m["target"] != "/":
            (inst / ("image" + m["target"])).mkdir(parents=True, exist_ok=True)
        if m.get("type") == "hostfs":
            (inst / m["source"]).mkdir(parents=True, exist_ok=True)
    try:
        mod.libos_check_config(str(inst), doc)
    except mod.RunFail as e:
        return str(e)
    return None


def test_the_double_loads_for_every_release_and_rejects_a_bad_size() -> None:
    """Positive control: the loaded checker is live (a wrong size is refused on both ends)."""
    for release in ("0.20.0", "0.21.0", "0.29.7", "0.31.0"):
        doc = _render_defaults(release)
        good = (json.dumps(doc, indent=4) + "\n").encode()
        assert double_verdict(release, good) is None
        doc["resource_limits"]["user_space_size"] = "256mb"
        verdict = double_verdict(release, (json.dumps(doc, indent=4) + "\n").encode())
        assert verdict is not None and 'The user_space_size "256mb" is not correct.' in verdict, verdict
        assert validate_config(release, doc)
        del doc["metadata"]
        verdict = double_verdict(release, (json.dumps(doc, indent=4) + "\n").encode())
        assert verdict is not None and "missing field `metadata`" in verdict, verdict


def _render_defaults(release: str) -> dict:
    plan = plan_memory(
        str(ADDRESS),
        release,
        ("-Xmx512m",),
        {k: None for k in KNOBS},
        java_threads=64,
        child_processes=0,
        headroom_percent=10.0,
    )
    jdk_dir = "/usr/lib/jvm/java-11-alibaba-dragonwell/jre"
    return render_occlum_json(
        release,
        OcclumConfigInputs(
            **limits_of(plan),
            entry_points=(f"{jdk_dir}/bin",),
            env_default=enclave_env(jdk_dir, ()),
            debuggable=True,
        ),
    )


# ---------------------------------------------------------------------------------------------
# (a) accepted values
# ---------------------------------------------------------------------------------------------


def sizes(lo_mb: int, hi_mb: int, hi_gb: int) -> st.SearchStrategy:
    """Canonical size strings from whole MB or GB, or unset (None: derived) a third of the time."""
    return st.one_of(
        st.none(),
        st.integers(lo_mb, hi_mb).map(lambda n: format_size(n * MB)),
        st.integers(1, hi_gb).map(lambda n: format_size(n * GB)),
    )


ENV_NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True)
# Values: anything a BUILD string can hold, except NUL (which no OS environment can carry).
ENV_VALUE = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=24)


@st.composite
def env_entries(draw) -> list:
    names = draw(st.lists(ENV_NAME, max_size=5, unique=True))
    out = [f"{n}={draw(ENV_VALUE)}" for n in names]
    if draw(st.booleans()) and "LD_LIBRARY_PATH" not in names:
        out.append(f"LD_LIBRARY_PATH={draw(ENV_VALUE)}")
    return draw(st.permutations(out))


SEGMENT = st.from_regex(r"[a-z0-9_][a-z0-9_.-]{0,7}", fullmatch=True).filter(lambda s: s not in (".", ".."))


@st.composite
def mounts(draw) -> list:
    targets = draw(
        st.lists(
            st.one_of(
                st.lists(SEGMENT, min_size=1, max_size=3).map(lambda p: "/" + "/".join(p)),
                st.sampled_from(["/tmp", "/data", "/var/log", "/etc/app", "/opt/app/conf/"]),
            ).filter(lambda t: t.rstrip("/") not in ("/host", "/proc", "/dev")),
            max_size=4,
            unique_by=lambda t: t.rstrip("/"),
        )
    )
    out = []
    for t in targets:
        kind = draw(st.sampled_from(["hostfs", "sefs", "ramfs"]))
        m: dict = {"target": t, "type": kind}
        if kind != "ramfs":
            m["source"] = draw(st.sampled_from(["./data", "./mnt/sefs", "/srv/shared", "./logs"]))
        if kind == "sefs" and draw(st.booleans()):
            m["options"] = {"cache_size": draw(st.sampled_from(["192KB", "1MB", "4MB", "32MB"]))}
        out.append(m)
    return out


XMX = st.sampled_from(["-Xmx64m", "-Xmx256m", "-Xmx512m", "-Xmx1g", "-Xmx1536m", "-Xmx2g", "-Xmx4g", "-Xmx8g"])
META = st.sampled_from(
    ["-XX:MaxMetaspaceSize=32m", "-XX:MaxMetaspaceSize=64m", "-XX:MaxMetaspaceSize=256m", "-XX:MaxMetaspaceSize=1g"]
)
XSS = st.sampled_from(["-Xss256k", "-Xss512k", "-Xss1m", "-Xss2m", "-Xss4m"])
OTHER = st.sampled_from(
    [
        "-XX:+UseSerialGC",
        "-Dfile.encoding=UTF-8",
        "-XX:ReservedCodeCacheSize=64m",
        "-XX:MaxDirectMemorySize=128m",
        "-XX:-UseCompressedOops",
        "-XX:ActiveProcessorCount=2",
    ]
)


@st.composite
def jvm_options(draw) -> Optional[list]:
    if draw(st.integers(0, 9)) == 0:
        return None  # unset: the field's default
    opts = [o for s, p in ((XMX, 0.9), (META, 0.7), (XSS, 0.5)) if draw(st.floats(0, 1)) < p for o in [draw(s)]]
    opts += draw(st.lists(OTHER, max_size=2, unique=True))
    return draw(st.permutations(opts))


@st.composite
def image_fields(draw) -> tuple:
    release = draw(st.sampled_from(SUPPORTED_RELEASES))
    raw: dict = {
        "user_space_size": draw(sizes(64, 16384, 32)),
        "kernel_space_heap_size": draw(sizes(16, 1024, 2)),
        "kernel_space_stack_size": draw(
            st.one_of(
                st.none(), st.integers(1, 16).map(lambda n: format_size(n * MB)), st.sampled_from(["256KB", "512KB"])
            )
        ),
        "default_heap_size": draw(sizes(8, 1024, 2)),
        "default_stack_size": draw(st.one_of(st.none(), st.integers(1, 64).map(lambda n: format_size(n * MB)))),
        "default_mmap_size": draw(sizes(64, 16384, 32)),
        "max_num_of_threads": draw(st.one_of(st.none(), st.integers(1, 4096))),
        "java_threads": draw(st.one_of(st.none(), st.integers(1, 512))),
        "child_processes": draw(st.one_of(st.none(), st.integers(0, 8))),
        "memory_headroom": draw(st.one_of(st.none(), st.integers(0, 100))),
        "debuggable": draw(st.one_of(st.none(), st.booleans())),
        "product_id": draw(st.one_of(st.none(), st.integers(0, 65535), st.sampled_from([0, 65535]))),
        "version_number": draw(st.one_of(st.none(), st.integers(0, 65535), st.sampled_from([0, 65535]))),
        "env": draw(st.one_of(st.none(), env_entries())),
        "untrusted_env": draw(st.one_of(st.none(), st.lists(ENV_NAME, max_size=4, unique=True))),
        "mounts": draw(st.one_of(st.none(), mounts())),
        "jvm_options": draw(jvm_options()),
        "jdk_dir": draw(st.one_of(st.none(), st.sampled_from(["/opt/jdk", "/usr/lib/jvm/jre/", "/a b/jdk"]))),
    }
    return release, raw


class Refused(Exception):
    """A catalogue error of a later step (not a field error): allowed, but counted."""


def build_config(release: str, raw: dict) -> tuple[dict, bytes]:
    """What `stage_occlum_instance` + `generate_occlum_config` do with the target's raw field values."""
    f = {alias: cls(raw[alias], ADDRESS) for alias, cls in SIZE_FIELDS.items()}
    threads = OcclumJavaImageMaxNumOfThreadsField(raw["max_num_of_threads"], ADDRESS)
    java_threads = OcclumJavaImageJavaThreadsField(raw["java_threads"], ADDRESS)
    children = OcclumJavaImageChildProcessesField(raw["child_processes"], ADDRESS)
    headroom = OcclumJavaImageMemoryHeadroomField(raw["memory_headroom"], ADDRESS)
    debuggable = OcclumJavaImageDebuggableField(raw["debuggable"], ADDRESS)
    product_id = OcclumJavaImageProductIdField(raw["product_id"], ADDRESS)
    version_number = OcclumJavaImageVersionNumberField(raw["version_number"], ADDRESS)
    env = OcclumJavaImageEnvField(raw["env"], ADDRESS)
    untrusted = OcclumJavaImageUntrustedEnvField(raw["untrusted_env"], ADDRESS)
    mount_field = OcclumJavaImageMountsField(raw["mounts"], ADDRESS)
    jvm = OcclumJavaImageJvmOptionsField(raw["jvm_options"], ADDRESS)
    jdk_dir_field = OcclumJavaImageJdkDirField(raw["jdk_dir"], ADDRESS)

    given = {alias: field.bytes for alias, field in f.items()}
    given["max_num_of_threads"] = threads.value
    try:
        plan = plan_memory(
            str(ADDRESS),
            release,
            tuple(jvm.value or ()),
            given,
            java_threads=java_threads.value,
            child_processes=children.value,
            headroom_percent=float(headroom.value),
        )
    except OcclumMemoryError as e:
        msg = str(e)
        assert str(ADDRESS) in msg and re.search(r"`(jvm_options|%s)`" % "|".join(KNOBS), msg), msg
        raise Refused("memory") from e
    for knob, value in given.items():  # hand-set values win, unchanged
        if value is not None:
            assert plan.limits[knob] == value, (knob, plan.limits[knob], value)

    jdk_dir = jdk_dir_field.value or "/usr/lib/jvm/java-11-alibaba-dragonwell/jre"
    user_env = tuple(env.value or ())
    env_default = enclave_env(jdk_dir, user_env)
    if any(e.startswith("LD_LIBRARY_PATH=") for e in user_env):
        assert env_default == user_env
    else:
        assert env_default == (ld_library_path(jdk_dir), *user_env)
    try:
        inputs = OcclumConfigInputs(
            **limits_of(plan),
            entry_points=(f"{jdk_dir}/bin",),
            env_default=env_default,
            env_untrusted=tuple(untrusted.value or ()),
            debuggable=debuggable.value,
            product_id=product_id.value,
            version_number=version_number.value,
            extra_mounts=mount_field.value,
        )
        doc = render_occlum_json(release, inputs)
    except UnsupportedFeatureError as e:
        # Release-dependent: sefs cache_size needs 0.29.5 (the field cannot know the release).
        assert "cache_size" in str(e) and not has_sefs_cache_size(release), e
        raise Refused("cache_size before 0.29.5") from e
    except ValueError as e:
        msg = str(e)
        defaults = {m["target"] for m in default_mounts(release)}
        clash = [m.target for m in mount_field.value if m.target in defaults]
        too_big = [
            m.target
            for m in mount_field.value
            if int(m.option("cache_size") or 0) > plan.limits["kernel_space_heap_size"]
        ]
        if clash and "clashes with Occlum" in msg and repr(clash[0]) in msg:
            raise Refused("mount clashes with the release's default mounts") from e
        if too_big and "exceeds the kernel heap" in msg:
            raise Refused("cache_size above the kernel heap") from e
        raise AssertionError(f"a value every field accepted broke config generation for {release}: {msg}\n{raw}") from e
    content = (json.dumps(doc, indent=4) + "\n").encode()  # exactly what generate_occlum_config writes
    return doc, content


def test_accepted_field_values_give_a_config_both_checkers_accept() -> None:
    stats: Counter = Counter()

    # derandomize: the coverage floors below must hold on every CI run, not on most.
    @settings(
        max_examples=250, deadline=None, database=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(image_fields())
    def check(case: tuple) -> None:
        drawn, raw = case
        # The drawn release, plus the double's two exact targets (0.20.0 ignores mounts: skipped there).
        for release in dict.fromkeys([drawn, "0.31.0", "0.20.0"]):
            if raw["mounts"] and not honours_mounts(release):
                continue
            check_release(release, raw)

    def check_release(release: str, raw: dict) -> None:
        try:
            doc, content = build_config(release, raw)
        except Refused as r:
            stats[f"refused: {r}"] += 1
            return
        problems = validate_config(release, doc)
        assert problems == [], (release, [str(p) for p in problems], raw)
        assert double_verdict(release, content) is None, (release, double_verdict(release, content), raw)
        assert double_runtime_verdict(release, json.loads(content)) is None, (
            release,
            double_runtime_verdict(release, json.loads(content)),
            raw,
        )
        # The document says what the fields said.
        md = doc["metadata"]
        assert md["product_id"] == (raw["product_id"] or 0) and md["version_number"] == (raw["version_number"] or 0)
        assert md["debuggable"] is (True if raw["debuggable"] is None else raw["debuggable"])
        assert doc["env"]["untrusted"] == list(raw["untrusted_env"] or [])
        for alias in ("user_space_size", "kernel_space_heap_size", "kernel_space_stack_size"):
            if raw[alias] is not None:
                assert doc["resource_limits"][alias] == raw[alias]
        for alias in ("default_heap_size", "default_stack_size", "default_mmap_size"):
            if raw[alias] is not None:
                assert doc["process"][alias] == raw[alias]
        if raw["max_num_of_threads"] is not None:
            assert doc["resource_limits"]["max_num_of_threads"] == raw["max_num_of_threads"]
        if honours_mounts(release):
            extra = [m["target"] for m in doc["mount"][-len(raw["mounts"]) :]] if raw["mounts"] else []
            assert extra == [re.sub("/+", "/", m["target"]).rstrip("/") for m in raw["mounts"] or []]
        stats["checked"] += 1
        stats[f"release {release}"] += 1
        if raw["mounts"]:
            stats["with mounts"] += 1

    check()
    print("\n", dict(stats))
    # The property must not hold vacuously: most examples get all the way to both checkers.
    assert stats["checked"] >= 250, stats
    assert stats["with mounts"] >= 50, stats
    assert stats["release 0.20.0"] >= 50 and stats["release 0.31.0"] >= 100, stats
    assert sum(1 for k in stats if k.startswith("release ")) >= 12, stats


# ---------------------------------------------------------------------------------------------
# (b) refused values: an InvalidFieldException naming the field, the target and the value
# ---------------------------------------------------------------------------------------------


def _catalogue_shape(exc: InvalidFieldException, alias: str, bad: Any) -> None:
    msg = str(exc)
    assert msg.startswith(f"The `{alias}` field in target svc:enclave"), msg
    shown = repr(bad) if isinstance(bad, str) else str(bad)
    assert shown in msg, (shown, msg)


BAD_SIZES = st.one_of(
    st.integers(1, 4096).map(lambda n: f"{n}mb"),
    st.integers(1, 4096).map(lambda n: f"{n}M"),
    st.integers(1, 64).map(lambda n: f"{n}.5GB"),
    st.integers(1, 4096).map(lambda n: f"{n}KiB"),
    st.integers(1, 4096).map(lambda n: f"{n}Mb"),
    st.integers(1, 4096).map(str),
    st.sampled_from(["256mb", "1.5GB", "256M", "MB", "", "-1MB", "0x10MB", "1e3MB", "256 M B"]),
)


@settings(max_examples=150, deadline=None, database=None)
@given(st.sampled_from(sorted(SIZE_FIELDS)), BAD_SIZES)
def test_bad_sizes_are_refused_naming_field_target_and_value(alias: str, bad: str) -> None:
    with pytest.raises(InvalidFieldException) as exc:
        SIZE_FIELDS[alias](bad, ADDRESS)
    _catalogue_shape(exc.value, alias, bad)
    assert "Occlum size" in str(exc.value)


@settings(max_examples=60, deadline=None, database=None)
@given(st.sampled_from(sorted(SIZE_FIELDS)), st.integers(1, 2**40))
def test_sizes_given_as_numbers_are_refused(alias: str, bad: int) -> None:
    with pytest.raises(InvalidFieldException) as exc:
        SIZE_FIELDS[alias](bad, ADDRESS)
    _catalogue_shape(exc.value, alias, bad)


BAD_ENV_ENTRY = st.one_of(
    ENV_NAME,  # no '='
    st.builds(lambda n, v: f"{n}={v}", st.from_regex(r"[0-9][A-Za-z0-9_]{0,6}", fullmatch=True), ENV_VALUE),
    st.builds(
        lambda n, v: f"{n}={v}", st.from_regex(r"[A-Za-z_]{1,4}[-.: ][A-Za-z0-9_]{0,4}", fullmatch=True), ENV_VALUE
    ),
    ENV_VALUE.map(lambda v: f"={v}"),
)


@settings(max_examples=150, deadline=None, database=None)
@given(env_entries(), BAD_ENV_ENTRY, st.data())
def test_bad_env_entries_are_refused(good: list, bad: str, data) -> None:
    entries = list(good)
    entries.insert(data.draw(st.integers(0, len(entries))), bad)
    with pytest.raises(InvalidFieldException) as exc:
        OcclumJavaImageEnvField(entries, ADDRESS)
    _catalogue_shape(exc.value, "env", bad)


@settings(max_examples=60, deadline=None, database=None)
@given(ENV_NAME, ENV_VALUE, ENV_VALUE)
def test_an_env_name_set_twice_is_refused(name: str, v1: str, v2: str) -> None:
    entries = [f"{name}={v1}", "OTHER_X=1", f"{name}={v2}"]
    with pytest.raises(InvalidFieldException) as exc:
        OcclumJavaImageEnvField(entries, ADDRESS)
    _catalogue_shape(exc.value, "env", entries[2])
    assert name in str(exc.value)


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(ENV_NAME, max_size=3, unique=True), ENV_NAME, ENV_VALUE)
def test_untrusted_names_with_a_value_are_refused(good: list, name: str, value: str) -> None:
    bad = f"{name}={value}"
    with pytest.raises(InvalidFieldException) as exc:
        OcclumJavaImageUntrustedEnvField([*good, bad], ADDRESS)
    _catalogue_shape(exc.value, "untrusted_env", bad)
    assert f"Use just {name!r}" in str(exc.value)


@settings(max_examples=100, deadline=None, database=None)
@given(
    mounts(),
    st.one_of(
        st.lists(SEGMENT, min_size=1, max_size=3).map("/".join),  # relative
        st.lists(SEGMENT, min_size=1, max_size=3).map(lambda p: "./" + "/".join(p)),
        st.lists(SEGMENT, min_size=1, max_size=2).map(lambda p: "/" + "/".join(p) + "/../etc"),
    ),
    st.sampled_from(["hostfs", "sefs", "ramfs"]),
    st.data(),
)
def test_relative_mount_targets_are_refused(good: list, target: str, kind: str, data) -> None:
    bad = {"target": target, "type": kind, **({} if kind == "ramfs" else {"source": "./d"})}
    entries = [m for m in good if m["target"].rstrip("/") != target]
    index = data.draw(st.integers(0, len(entries)))
    entries.insert(index, bad)
    with pytest.raises(InvalidFieldException) as exc:
        OcclumJavaImageMountsField(entries, ADDRESS)
    msg = str(exc.value)
    assert msg.startswith(f"The `mounts` field in target svc:enclave, entry {index}"), msg
    assert repr(target) in msg, msg


@settings(max_examples=30, deadline=None, database=None)
@given(st.sampled_from(["/", "/host", "/proc", "/dev", "/dev/", "//proc", "/host//"]))
def test_reserved_mount_targets_are_refused(target: str) -> None:
    with pytest.raises(InvalidFieldException) as exc:
        OcclumJavaImageMountsField([{"target": target, "type": "ramfs"}], ADDRESS)
    msg = str(exc.value)
    assert msg.startswith("The `mounts` field in target svc:enclave, entry 0") and repr(target) in msg, msg


@settings(max_examples=80, deadline=None, database=None)
@given(st.sampled_from([OcclumJavaImageProductIdField, OcclumJavaImageVersionNumberField]), st.integers(65536, 2**63))
def test_ids_above_16_bits_are_refused(cls, bad: int) -> None:
    with pytest.raises(InvalidFieldException) as exc:
        cls(bad, ADDRESS)
    _catalogue_shape(exc.value, cls.alias, bad)
    assert "65535" in str(exc.value)
