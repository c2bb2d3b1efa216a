from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from occlum.config import releases as rel
from occlum.config.model import Mount, OcclumConfigInputs, UnsupportedFeatureError, render_occlum_json
from occlum.config.releases import SUPPORTED_RELEASES, parse_release
from occlum.config.sizes import GB, KB, MB
from occlum.config.validation import validate_config

VECTORS = Path(__file__).resolve().parents[3] / "tests" / "data" / "occlum"  # see its README
JRE = "/usr/lib/jvm/java-11-alibaba-dragonwell/jre"
JAVA_DEMO = OcclumConfigInputs(
    user_space_size=1680 * MB,
    kernel_space_heap_size=64 * MB,
    kernel_space_stack_size=1 * MB,
    max_num_of_threads=64,
    default_heap_size=256 * MB,
    default_stack_size=4 * MB,
    default_mmap_size=1400 * MB,
    entry_points=(f"{JRE}/bin",),
    env_default=(f"LD_LIBRARY_PATH={JRE}/lib/server:{JRE}/lib:{JRE}/../lib",),
    env_untrusted=(),
    debuggable=True,
)


def _template_for(release: str) -> dict[str, Any]:
    """The release's template, or the nearest earlier one (same generation) if it has none."""
    have = sorted((parse_release(p.stem), p) for p in (VECTORS / "templates").glob("*.json"))
    path = [p for r, p in have if r <= parse_release(release)][-1]
    assert rel.schema_index()[path.stem] == rel.schema_index()[release]
    return json.loads(path.read_text())


def _key_paths(node: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{prefix}.{key}"
            if key != "mount":
                yield from _key_paths(value, f"{prefix}.{key}")


@pytest.mark.parametrize("release", SUPPORTED_RELEASES)
def test_java_demo_renders_valid_template_shaped_config(release: str) -> None:
    doc = render_occlum_json(release, JAVA_DEMO)
    assert validate_config(release, doc) == []
    template = _template_for(release)
    assert list(_key_paths(doc)) == list(_key_paths(template))  # same keys, same order
    assert doc["mount"] == template["mount"]
    assert doc["metadata"] == template["metadata"]  # template is debuggable, ids 0
    assert doc.get("feature") == template.get("feature")
    assert doc["resource_limits"]["user_space_size"] == "1680MB"
    assert doc["resource_limits"]["kernel_space_heap_size"] == "64MB"
    assert doc["process"] == {"default_stack_size": "4MB", "default_heap_size": "256MB", "default_mmap_size": "1400MB"}
    assert doc["entry_points"] == [f"{JRE}/bin"]
    assert doc["env"]["untrusted"] == [] and doc["env"]["default"][0].startswith("LD_LIBRARY_PATH=")


@pytest.mark.parametrize("release", SUPPORTED_RELEASES)
def test_user_space_max_size_only_where_supported(release: str) -> None:
    doc = render_occlum_json(release, replace(JAVA_DEMO, user_space_max_size=2 * GB))
    limits = doc["resource_limits"]
    assert limits["user_space_size"] == "1680MB"  # always the real size (docs/occlum-contract.md §1.5 trap)
    if rel.has_user_space_max_size(release):
        assert limits["user_space_max_size"] == "2GB"
        assert list(limits).index("user_space_max_size") == list(limits).index("user_space_size") + 1
    else:
        assert "user_space_max_size" not in limits
    assert validate_config(release, doc) == []


def test_render_is_deterministic_and_json_serialisable() -> None:
    a = json.dumps(render_occlum_json("0.31.0", JAVA_DEMO))
    b = json.dumps(render_occlum_json("v0.31.0", JAVA_DEMO))
    assert a == b


def test_extra_mounts_follow_defaults() -> None:
    mounts = (
        Mount("/opt/conf", "hostfs", "/opt/conf-copy"),
        Mount("/data", "sefs", "./run/mount/data", {"temporary": True, "cache_size": "1MB"}),
        Mount("/scratch", "ramfs"),
    )
    doc = render_occlum_json("0.31.0", replace(JAVA_DEMO, extra_mounts=mounts))
    assert [m["target"] for m in doc["mount"]] == ["/", "/host", "/opt/conf", "/data", "/scratch"]
    assert doc["mount"][3] == {
        "target": "/data",
        "type": "sefs",
        "source": "./run/mount/data",
        "options": {"cache_size": "1MB", "temporary": True},
    }
    assert doc["mount"][4] == {"target": "/scratch", "type": "ramfs"}
    assert validate_config("0.31.0", doc) == []


def test_extra_mounts_refused_where_they_would_be_ignored() -> None:
    inputs = replace(JAVA_DEMO, extra_mounts=(Mount("/opt/conf", "hostfs", "/c"),))
    with pytest.raises(UnsupportedFeatureError, match="0.21.0"):
        render_occlum_json("0.20.0", inputs)
    cached = replace(JAVA_DEMO, extra_mounts=(Mount("/d", "sefs", "./d", {"cache_size": 1 * MB}),))
    with pytest.raises(UnsupportedFeatureError, match="0.29.5"):
        render_occlum_json("0.29.4", cached)
    assert render_occlum_json("0.29.5", cached)["mount"][-1]["options"] == {"cache_size": "1MB"}
    with pytest.raises(ValueError, match="clashes"):
        render_occlum_json("0.21.0", replace(JAVA_DEMO, extra_mounts=(Mount("/tmp", "ramfs"),)))
    assert render_occlum_json("0.24.0", replace(JAVA_DEMO, extra_mounts=(Mount("/tmp", "ramfs"),)))


def test_unknown_release() -> None:
    with pytest.raises(rel.UnknownReleaseError):
        render_occlum_json("0.19.0", JAVA_DEMO)


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"entry_points": ("bin",)}, "absolute"),
        ({"entry_points": ()}, "at least one"),
        ({"entry_points": "/bin"}, "sequence"),
        ({"env_default": ("NOEQUALS",)}, "KEY=VALUE"),
        ({"env_default": ("=x",)}, "KEY=VALUE"),
        ({"env_untrusted": ("A=B",)}, "variable names"),
        ({"user_space_max_size": 1 * MB}, "smaller than"),
        ({"user_space_size": 1000}, "multiple of 4KB"),
        ({"default_mmap_size": 0}, "multiple of 4KB"),
        ({"kernel_space_heap_size": True}, "multiple of 4KB"),
        ({"max_num_of_threads": 0}, "max_num_of_threads"),
        ({"product_id": 70000}, "product_id"),
        ({"version_number": -1}, "version_number"),
        ({"debuggable": "yes"}, "bool"),
        ({"extra_mounts": (Mount("/a", "ramfs"), Mount("/a", "ramfs"))}, "twice"),
        ({"extra_mounts": (Mount("/a", "sefs", "./a", {"cache_size": 128 * MB}),)}, "exceeds the kernel heap"),
    ],
)
def test_inputs_are_checked(changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        replace(JAVA_DEMO, **changes)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(target="/x", type="ext2", source="./x"), "has type"),
        (dict(target="x", type="ramfs"), "absolute path"),
        (dict(target="/", type="ramfs"), "Occlum mounts itself"),
        (dict(target="/proc", type="ramfs"), "Occlum mounts itself"),
        (dict(target="/a/../b", type="ramfs"), "no `.` or `..`"),
        (dict(target="/a/./b", type="ramfs"), "no `.` or `..`"),
        (dict(target="/a//b", type="ramfs"), "no `.` or `..`"),
        (dict(target="/" + "d" * 256, type="ramfs"), "of 256 bytes; at most 255"),
        (dict(target="/data" * 205, type="ramfs"), "1025 bytes long; at most 1024"),
        (dict(target="/da\nta", type="ramfs"), "control character"),
        (dict(target="/da\udcfff", type="ramfs"), "not valid UTF-8"),
        (dict(target="/x", type="hostfs"), "needs `source`"),
        (dict(target="/x", type="ramfs", source="./x"), "takes no `source`"),
        (dict(target="/x", type="hostfs", source="/h", options={"temporary": True}), "does not take"),
        (dict(target="/x", type="sefs", source="./x", options={"MAC": ""}), "does not take"),
        (dict(target="/x", type="sefs", source="./x", options={"temporary": "yes"}), "True or False"),
        (dict(target="/x", type="sefs", source="./x", options={"cache_size": "100KB"}), "at least 192KB"),
        (dict(target="/x", type="sefs", source="./x", options={"cache_size": "256mb"}), "case-sensitive"),
    ],
)
def test_mount_is_checked(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Mount(**kwargs)


def test_mount_options_normalised() -> None:
    m = Mount("/x", "sefs", "./x", {"temporary": False, "cache_size": "1MB"})
    assert m.options == (("cache_size", 1 * MB), ("temporary", False))
    assert m == Mount("/x", "sefs", "./x", (("temporary", False), ("cache_size", 1 * MB)))
    assert hash(m) == hash(Mount("/x", "sefs", "./x", {"cache_size": 1 * MB, "temporary": False}))


# ------------------------------------------------------------------ property

_pages = lambda lo, hi: st.integers(lo // 4096, hi // 4096).map(lambda n: n * 4096)  # noqa: E731
_segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=8).filter(
    lambda s: s not in (".", "..")
)
_abspath = st.lists(_segment, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
_env_key = st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True)
_env_val = st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=["Cs"]), max_size=20)


@st.composite
def _release_and_inputs(draw: st.DrawFn) -> tuple:
    release = draw(st.sampled_from(SUPPORTED_RELEASES))
    user = draw(_pages(4 * KB, 64 * GB))
    kheap = draw(_pages(1 * MB, 1 * GB))
    mounts: list = []
    if rel.honours_mounts(release):
        targets = draw(
            st.lists(
                _abspath.filter(lambda t: t.split("/")[1] not in ("host", "proc", "dev", "tmp")),
                max_size=3,
                unique=True,
            )
        )
        for t in targets:
            kind = draw(st.sampled_from(["hostfs", "sefs", "ramfs"]))
            opts: dict[str, Any] = {}
            if kind == "sefs":
                if draw(st.booleans()):
                    opts["temporary"] = draw(st.booleans())
                if rel.has_sefs_cache_size(release) and draw(st.booleans()):
                    opts["cache_size"] = draw(_pages(196608, kheap))
            source = None if kind == "ramfs" else draw(st.sampled_from(["./run/mount/x", ".", "/opt/host"]))
            mounts.append(Mount(t, kind, source, opts))
    inputs = OcclumConfigInputs(
        user_space_size=user,
        kernel_space_heap_size=kheap,
        kernel_space_stack_size=draw(_pages(4 * KB, 64 * MB)),
        max_num_of_threads=draw(st.integers(1, 2**32 - 1)),
        default_heap_size=draw(_pages(4 * KB, 4 * GB)),
        default_stack_size=draw(_pages(4 * KB, 64 * MB)),
        default_mmap_size=draw(_pages(4 * KB, 64 * GB)),
        user_space_max_size=draw(st.none() | _pages(user, 128 * GB)),
        entry_points=tuple(draw(st.lists(_abspath, min_size=1, max_size=3))),
        env_default=tuple(f"{k}={v}" for k, v in draw(st.lists(st.tuples(_env_key, _env_val), max_size=3))),
        env_untrusted=tuple(draw(st.lists(_env_key, max_size=3))),
        debuggable=draw(st.booleans()),
        product_id=draw(st.integers(0, 65535)),
        version_number=draw(st.integers(0, 65535)),
        extra_mounts=tuple(mounts),
    )
    return release, inputs


@settings(max_examples=150, deadline=None)
@given(_release_and_inputs())
def test_any_valid_inputs_render_a_valid_config(case: tuple) -> None:
    release, inputs = case
    doc = render_occlum_json(release, inputs)
    assert validate_config(release, json.loads(json.dumps(doc))) == []


def test_every_limit_is_an_input_and_the_since_releases_are_the_predicates() -> None:
    from dataclasses import fields

    from occlum.config import releases as rel
    from occlum.config.model import LIMITS, OcclumConfigInputs

    assert {limit.name for limit in LIMITS} <= {f.name for f in fields(OcclumConfigInputs)}
    optional = {limit.name: limit.since for limit in LIMITS if limit.optional}
    assert rel.has_user_space_max_size(optional["user_space_max_size"])
    assert not rel.has_user_space_max_size("0.29.7")
    assert rel.has_kernel_space_heap_max_size(optional["kernel_space_heap_max_size"])
    assert not rel.has_kernel_space_heap_max_size("0.29.3")
