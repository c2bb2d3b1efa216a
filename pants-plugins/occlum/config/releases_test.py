from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from jsonschema import Draft202012Validator

from occlum.config import releases as rel
from occlum.config.releases import SUPPORTED_RELEASES, UnknownReleaseError, parse_release

VECTORS = Path(__file__).resolve().parents[3] / "tests" / "data" / "occlum"  # see its README


def test_supported_releases_sorted_unique_and_indexed() -> None:
    parsed = [parse_release(r) for r in SUPPORTED_RELEASES]
    assert parsed == sorted(set(parsed))
    assert set(rel.schema_index()) == set(SUPPORTED_RELEASES)
    for release in SUPPORTED_RELEASES:
        assert rel.schema_file_for(release).is_file()


def test_every_template_release_is_supported() -> None:
    templates = {p.stem for p in (VECTORS / "templates").glob("*.json")}
    assert len(templates) == 21
    assert templates <= set(SUPPORTED_RELEASES)
    assert {"0.29.1", "0.30.0", "0.30.1"} <= set(SUPPORTED_RELEASES)


def test_parse_release() -> None:
    assert parse_release("0.31.0") == (0, 31, 0)
    assert parse_release("v0.29.1") == (0, 29, 1)
    assert parse_release("0.29.7") < parse_release("0.30.0") < parse_release("0.30.1")
    assert rel.normalize_release(" v0.30.1 ") == "0.30.1"


@pytest.mark.parametrize("bad", ["0.19.0", "0.31.1", "0.31", "abc", "", "1.0.0.0"])
def test_unknown_release_lists_supported(bad: str) -> None:
    with pytest.raises(UnknownReleaseError) as info:
        parse_release(bad)
    msg = str(info.value)
    assert repr(bad) in msg
    assert "0.20.0" in msg and "0.31.0" in msg and "0.29.6" in msg


FIRST_TRUE: list[tuple[Callable[[str], bool], str]] = [
    (rel.honours_mounts, "0.21.0"),
    (rel.has_kss, "0.26.3"),
    (rel.has_print, "0.29.1"),
    (rel.has_package_debug, "0.23.7"),
    (rel.has_kernel_space_heap_max_size, "0.29.4"),
    (rel.has_sefs_cache_size, "0.29.5"),
    (rel.auto_adds_proc_dev, "0.29.6"),
    (rel.has_user_space_max_size, "0.30.0"),
    (rel.has_feature_object, "0.30.1"),
    (rel.has_disable_log, "0.30.1"),
    (rel.has_io_uring, "0.31.0"),
    (rel.has_ext2, "0.31.0"),
    (rel.has_copy_bom, "0.24.1"),
    (rel.has_ra_config, "0.27.3"),
]


@pytest.mark.parametrize("pred,first", FIRST_TRUE, ids=[p.__name__ for p, _ in FIRST_TRUE])
def test_monotonic_predicates(pred: Callable[[str], bool], first: str) -> None:
    for r in SUPPORTED_RELEASES:
        assert pred(r) == (parse_release(r) >= parse_release(first)), r


def test_windowed_predicates() -> None:
    on = lambda pred: [r for r in SUPPORTED_RELEASES if pred(r)]  # noqa: E731
    assert on(rel.requires_metadata_pkru) == ["0.28.0", "0.28.1"]
    assert on(rel.has_metadata_pkru)[0] == "0.28.0" and on(rel.has_metadata_pkru)[-1] == "0.30.0"
    assert on(rel.has_metadata_amx) == ["0.30.0"]
    assert on(rel.has_tmp_in_template) == ["0.21.0", "0.22.0"]


def _schema(release: str) -> dict:
    return json.loads(rel.schema_file_for(release).read_text())


def _properties(node: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{path}.{name}", sub
        for key, sub in node.items():
            if key != "if":  # conditions, not property declarations
                yield from _properties(sub, f"{path}/{key}")
    elif isinstance(node, list):
        for sub in node:
            yield from _properties(sub, path)


@pytest.mark.parametrize("name", sorted(set(json.loads((rel.schemas_dir() / "index.json").read_text()).values())))
def test_schema_files_are_valid_2020_12_with_descriptions(name: str) -> None:
    schema = json.loads((rel.schemas_dir() / name).read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(name) and schema["title"] and schema["description"]
    props = list(_properties(schema))
    assert len(props) > 20
    missing = [p for p, sub in props if "description" not in sub]
    assert missing == []


@pytest.mark.parametrize("release", SUPPORTED_RELEASES)
def test_schema_generation_matches_predicates(release: str) -> None:
    s = _schema(release)
    props = s["properties"]
    meta_required = set(props["metadata"]["required"])
    assert ("enable_kss" in meta_required) == rel.has_kss(release)
    assert ("family_id" in meta_required) == rel.has_kss(release)
    assert ("pkru" in meta_required) == rel.requires_metadata_pkru(release)
    assert ("pkru" in props["metadata"]["properties"]) == rel.has_metadata_pkru(release)
    assert ("amx" in props["metadata"]["properties"]) == rel.has_metadata_amx(release)
    assert ("feature" in s["required"]) == rel.has_feature_object(release)
    assert ("user_space_max_size" in props["resource_limits"]["properties"]) == rel.has_user_space_max_size(release)
    assert ("ext2" in s["$defs"]["mount"]["properties"]["type"]["enum"]) == rel.has_ext2(release)
    if rel.has_feature_object(release):
        assert ("io_uring" in props["feature"]["properties"]) == rel.has_io_uring(release)
    assert s["additionalProperties"] is False
    assert "mount" in s["required"] and "default_mmap_size" in props["process"]["required"]


def test_generations() -> None:
    index = rel.schema_index()
    files = sorted(set(index.values()))
    assert len(files) == 8
    assert index["0.20.0"] != index["0.21.0"] == index["0.26.0"] != index["0.26.3"] == index["0.27.3"]
    assert index["0.27.3"] != index["0.28.1"] != index["0.29.0"] == index["0.29.7"]
    assert len({index["0.29.7"], index["0.30.0"], index["0.30.1"], index["0.31.0"]}) == 4
