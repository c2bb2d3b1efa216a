from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from occlum.config import releases as rel
from occlum.config.model import Mount, OcclumConfigInputs, render_occlum_json
from occlum.config.sizes import MB
from occlum.config.validation import MISSING, Problem, validate_config

VECTORS = Path(__file__).resolve().parents[3] / "tests" / "data" / "occlum"  # see its README


def _template_files() -> list[str]:
    return sorted(p.name for p in (VECTORS / "templates").glob("*.json"))


def _cases() -> list[dict[str, Any]]:
    return json.loads((VECTORS / "cases" / "index.json").read_text())


@pytest.mark.parametrize("name", _template_files())
def test_every_template_is_valid_for_its_release(name: str) -> None:
    path = VECTORS / "templates" / name
    assert validate_config(path.stem, json.loads(path.read_text())) == []


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["file"])
def test_case_verdicts(case: dict[str, Any]) -> None:
    doc = json.loads((VECTORS / "cases" / case["file"]).read_text())
    problems = validate_config(case["occlum_version"], doc)
    assert ("reject" if problems else "accept") == case["expect"], [str(p) for p in problems]


def test_case_index_is_not_trivial() -> None:
    cases = _cases()
    assert len(cases) >= 60
    assert {c["expect"] for c in cases} == {"accept", "reject"}


def _doc(release: str = "0.31.0", **changes: Any) -> dict[str, Any]:
    inputs = OcclumConfigInputs(
        user_space_size=300 * MB,
        kernel_space_heap_size=32 * MB,
        kernel_space_stack_size=1 * MB,
        max_num_of_threads=32,
        default_heap_size=32 * MB,
        default_stack_size=4 * MB,
        default_mmap_size=100 * MB,
        entry_points=("/bin",),
        env_default=("OCCLUM=yes",),
        **changes,
    )
    return render_occlum_json(release, inputs)


def _strs(release: str, doc: Any) -> list[str]:
    return [str(p) for p in validate_config(release, doc)]


def test_problem_str_and_size_message() -> None:
    doc = _doc()
    doc["resource_limits"]["user_space_size"] = "256mb"
    [problem] = validate_config("0.31.0", doc)
    assert problem.path == "$.resource_limits.user_space_size" and problem.value == "256mb"
    assert str(problem).startswith("$.resource_limits.user_space_size: '256mb': ")
    assert "case-sensitive" in problem.rule and '"256MB"' in problem.rule


def test_missing_and_moved_keys_explained() -> None:
    doc = _doc()
    del doc["feature"]
    doc["metadata"]["pkru"] = 1
    probs = validate_config("0.31.0", doc)
    assert [p.path for p in probs] == ["$.feature", "$.metadata.pkru"]
    assert probs[0].value is MISSING and "<missing>" in str(probs[0]) and "0.30.1" in probs[0].rule
    assert "feature.pkru" in probs[1].rule


def test_older_generation_template_fails_on_newer_release() -> None:
    old = _doc("0.20.0")
    assert any("$.metadata.enable_kss: <missing>" in s for s in _strs("0.26.3", old))
    assert any(s.startswith("$.feature: <missing>") for s in _strs("0.30.1", old))
    new = _doc("0.31.0")
    assert any(s.startswith("$.feature: ") and "unknown key" in s for s in _strs("0.20.0", new))


@pytest.mark.parametrize("release,ok", [("0.29.0", False), ("0.29.3", False), ("0.29.4", True), ("0.31.0", True)])
def test_kernel_space_heap_max_size_gated(release: str, ok: bool) -> None:
    doc = _doc(release)
    doc["resource_limits"]["kernel_space_heap_max_size"] = "64MB"
    assert (_strs(release, doc) == []) == ok


@pytest.mark.parametrize("release,ok", [("0.29.4", False), ("0.29.5", True), ("0.30.1", True)])
def test_cache_size_gated(release: str, ok: bool) -> None:
    doc = _doc(release)
    doc["mount"].append({"target": "/d", "type": "sefs", "source": "./d", "options": {"cache_size": "1MB"}})
    assert (_strs(release, doc) == []) == ok


def test_cache_size_against_kernel_heap_max() -> None:
    doc = _doc()
    doc["mount"].append({"target": "/d", "type": "sefs", "source": "./d", "options": {"cache_size": "48MB"}})
    assert any("cache_size" in s for s in _strs("0.31.0", doc))
    doc["resource_limits"]["kernel_space_heap_max_size"] = "64MB"
    assert _strs("0.31.0", doc) == []
    doc["mount"][-1]["options"]["cache_size"] = "197KB"  # >= 192KB but not page aligned
    assert any("multiple of 4096" in s for s in _strs("0.31.0", doc))


def test_size_relations() -> None:
    doc = _doc(user_space_max_size=300 * MB)
    assert _strs("0.31.0", doc) == []  # equal is fine
    doc["resource_limits"]["kernel_space_heap_max_size"] = "16MB"
    assert _strs("0.31.0", doc) == [
        "$.resource_limits.kernel_space_heap_size: '32MB': kernel_space_heap_size is larger than "
        "kernel_space_heap_max_size '16MB': wrong configuration"
    ]


def test_mount_rules() -> None:
    doc = _doc(extra_mounts=(Mount("/data", "hostfs", "/d"),))
    doc["mount"].append({"target": "/data", "type": "ramfs"})
    doc["mount"].append({"target": "/enc", "type": "sefs", "source": "./e", "options": {"MAC": "", "temporary": True}})
    doc["mount"].append({"target": "/ram", "type": "ramfs", "options": {"disk_size": "5GB"}})
    out = _strs("0.31.0", doc)
    assert "$.mount[3].target: '/data': mount target already used by $.mount[2]" in out
    assert any(s.startswith("$.mount[4].options: ") and "cannot be temporary" in s for s in out)
    assert any(s.startswith("$.mount[5].options.disk_size: ") and "ext2" in s for s in out)
    assert len(out) == 3


def test_root_unionfs_needs_layers() -> None:
    doc = _doc()
    doc["mount"][0]["options"] = {}
    assert _strs("0.31.0", doc) == ["$.mount[0].options.layers: <missing>: the root UnionFS must be given layers"]


def test_mounts_are_not_cross_checked_on_0_20() -> None:
    doc = _doc("0.20.0")
    doc["mount"] = [{"target": "/host", "type": "hostfs", "source": "."}]
    assert _strs("0.20.0", doc) == []  # 0.20.0 ignores the list; only its shape is checked
    doc["mount"] = [{"target": "/x", "type": "ext2"}]
    assert _strs("0.20.0", doc) != []


@pytest.mark.parametrize(
    "section,key,value",
    [
        ("resource_limits", "max_num_of_threads", True),
        ("resource_limits", "max_num_of_threads", 0),
        ("resource_limits", "max_num_of_threads", 2**32),
        ("metadata", "product_id", 65536),
        ("metadata", "version_number", 1.0),
        ("resource_limits", "user_space_size", "16777216TB"),  # overflows 64 bits
        ("process", "default_stack_size", " 4 mb"),
        ("feature", "io_uring", 17),
        ("feature", "enable_edmm", 0),
        ("env", "untrusted", ["A=B"]),
        ("env", "extra", []),
    ],
)
def test_scalar_rules(section: str, key: str, value: Any) -> None:
    doc = _doc()
    doc[section][key] = value
    [problem] = validate_config("0.31.0", doc)
    assert problem.path.startswith(f"$.{section}.{key}")


def test_non_object_document_and_sorting() -> None:
    assert [p.path for p in validate_config("0.31.0", [])] == ["$"]
    doc = _doc()
    doc["zzz"] = 1
    doc["env"]["default"] = ["X"]
    doc["resource_limits"]["user_space_size"] = 1
    paths = [p.path for p in validate_config("0.31.0", doc)]
    assert paths == sorted(paths) and len(paths) == 3


def test_unknown_release_raises() -> None:
    with pytest.raises(rel.UnknownReleaseError):
        validate_config("0.32.0", {})


def test_problem_is_a_frozen_value() -> None:
    p = Problem("$.x", 1, "bad")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.path = "$.y"  # type: ignore[misc]
    assert p == Problem("$.x", 1, "bad") and str(p) == "$.x: 1: bad"
