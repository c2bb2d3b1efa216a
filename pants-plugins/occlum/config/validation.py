"""Strict validation of an Occlum.json for one release.

First the release's JSON Schema (structure, types, size grammar, unknown
keys), then the cross-field rules gen_internal_conf / the LibOS apply in code
(docs/occlum-contract.md §1.6). Both the "crash" and the "silently empty output" failure
classes, and the run-time-only failures, become Problems here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Optional, Union

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from jsonschema.validators import extend

from occlum.config import releases as rel
from occlum.config.sizes import GB, SizeError, parse_size

PathPart = Union[str, int]

SEFS_MIN_CACHE_SIZE = 196608
SEFS_CACHE_PAGE = 4096
EXT2_MIN_DISK_SIZE = 5 * GB


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Problem:
    """One reason the config would fail (or misbehave) on the chosen release."""

    path: str  # JSONPath-like, e.g. "$.resource_limits.user_space_size"
    value: Any  # the offending value, or MISSING
    rule: str

    def __str__(self) -> str:
        return f"{self.path}: {self.value!r}: {self.rule}"

    def sort_key(self) -> tuple:
        return (self.path, self.rule, repr(self.value))


def json_path(parts: Iterable[PathPart]) -> str:
    out = "$"
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p.isidentifier():
            out += f".{p}"
        else:
            out += f"[{json.dumps(p)}]"
    return out


# serde rejects 32.0 for a u32, but JSON Schema counts it as an integer.
_StrictValidator = extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, v: isinstance(v, int) and not isinstance(v, bool)
    ),
)


@cache
def _validator(release: str) -> Draft202012Validator:
    schema = json.loads(rel.schema_file_for(release).read_text(encoding="utf-8"))
    return _StrictValidator(schema)


def validate_config(release: str, doc: Any) -> list[Problem]:
    """All problems with `doc` (a parsed Occlum.json) for `release`; [] means valid.

    Raises UnknownReleaseError for an unsupported release.
    """
    release = rel.normalize_release(release)
    problems: dict[tuple, Problem] = {}
    for error in _validator(release).iter_errors(doc):
        for p in _from_schema_error(release, error):
            problems.setdefault(p.sort_key(), p)
    if isinstance(doc, dict):
        for p in _cross_field(release, doc):
            problems.setdefault(p.sort_key(), p)
    return [problems[k] for k in sorted(problems)]


# ---------------------------------------------------------------- schema errors

_PATTERN_RULES = {
    "^/": 'must be an absolute path (starting with "/")',
    "^[^=\\u0000]+=[^\\u0000]*$": "must be a KEY=VALUE string (the LibOS rejects anything else at run time)",
    "^[^=\\u0000]+$": "must be an environment variable name, without '='",
    "^(0x)?[0-9a-fA-F]{1,16}$": "must be a 64-bit hex string such as 0x1234567812345678",
}


def _dotted(parts: Sequence[PathPart]) -> str:
    """Key name for KEY_INTRODUCED/KEY_MOVED: "$.mount[2].options.x" -> "mount.options.x"."""
    names = [p for p in parts if isinstance(p, str)]
    if names and names[0] == "mount":
        return "mount.options." + names[-1] if len(names) >= 2 and names[-2] == "options" else "mount." + names[-1]
    return ".".join(names)


def _key_hint(release: str, dotted: str) -> Optional[str]:
    if dotted in rel.KEY_MOVED:
        return f"moved to {rel.KEY_MOVED[dotted]}; Occlum {release} silently ignores it here"
    since = rel.KEY_INTRODUCED.get(dotted)
    if since and rel.parse_release(release) < rel.parse_release(since):
        return f"only understood from Occlum {since}; {release} silently ignores it"
    return None


def _from_schema_error(release: str, e: ValidationError) -> Iterator[Problem]:
    parts = list(e.absolute_path)
    path = json_path(parts)
    kind = e.validator
    schema = e.schema if isinstance(e.schema, dict) else {}
    if kind == "required":
        for key in e.validator_value:
            if isinstance(e.instance, dict) and key not in e.instance:
                since = rel.KEY_INTRODUCED.get(_dotted(parts + [key]))
                extra = f" (required since Occlum {since})" if since else ""
                yield Problem(json_path(parts + [key]), MISSING, f"required key is missing{extra}")
        return
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        for key in e.instance:
            if key not in allowed:
                hint = _key_hint(release, _dotted(parts + [key]))
                rule = (
                    f"unknown key: {hint}"
                    if hint
                    else (
                        f"unknown key (Occlum {release} silently ignores it; likely a typo); "
                        f"allowed: {', '.join(allowed)}"
                    )
                )
                yield Problem(json_path(parts + [key]), e.instance[key], rule)
        return
    if schema.get("x-occlum-kind") == "size" and kind in ("type", "pattern"):
        try:
            parse_size(e.instance)
            rule = "not a valid Occlum size"  # regex/parser disagreement (exotic whitespace)
        except SizeError as err:
            rule = str(err)
        yield Problem(path, e.instance, rule)
        return
    if kind == "pattern":
        rule = _PATTERN_RULES.get(e.validator_value, f"must match {e.validator_value}")
    elif kind == "type":
        rule = f"must be of JSON type {e.validator_value}"
    elif kind == "enum":
        rule = f"must be one of {', '.join(json.dumps(v) for v in e.validator_value)}"
    elif kind in ("minimum", "maximum"):
        rule = f"must be an integer in [{schema.get('minimum')}, {schema.get('maximum')}]"
    elif kind == "minItems":
        rule = f"must have at least {e.validator_value} item(s)"
    else:
        rule = e.message
    yield Problem(path, e.instance, rule)


# ------------------------------------------------------------ cross-field rules


def _size_at(doc: dict[str, Any], section: str, key: str) -> Optional[int]:
    """A size that is present and parses; None otherwise (the schema reports bad ones)."""
    value = doc.get(section, {}).get(key) if isinstance(doc.get(section), dict) else None
    try:
        return parse_size(value) if isinstance(value, str) else None
    except SizeError:
        return None


def _cross_field(release: str, doc: dict[str, Any]) -> Iterator[Problem]:
    r = rel.parse_release(release)
    raw_limits = doc.get("resource_limits")
    limits: dict[str, Any] = raw_limits if isinstance(raw_limits, dict) else {}

    # Sizes the schema regex accepts but that overflow 64 bits.
    for section in ("resource_limits", "process"):
        block = doc.get(section)
        if isinstance(block, dict):
            for key, value in block.items():
                if isinstance(value, str) and key.endswith("_size"):
                    try:
                        parse_size(value)
                    except SizeError as err:
                        yield Problem(json_path([section, key]), value, str(err))

    # Keys the generation's schema allows but this point release predates.
    if "kernel_space_heap_max_size" in limits and not rel.has_kernel_space_heap_max_size(r):
        yield Problem(
            "$.resource_limits.kernel_space_heap_max_size",
            limits["kernel_space_heap_max_size"],
            f"unknown key: {_key_hint(release, 'resource_limits.kernel_space_heap_max_size')}",
        )

    user = _size_at(doc, "resource_limits", "user_space_size")
    user_max = _size_at(doc, "resource_limits", "user_space_max_size")
    if user is not None and user_max is not None and user > user_max:
        yield Problem(
            "$.resource_limits.user_space_size",
            limits["user_space_size"],
            f"user_space_size is larger than user_space_max_size "
            f"{limits['user_space_max_size']!r}: wrong configuration",
        )
    heap = _size_at(doc, "resource_limits", "kernel_space_heap_size")
    heap_max = _size_at(doc, "resource_limits", "kernel_space_heap_max_size")
    if heap is not None and heap_max is not None and heap > heap_max:
        yield Problem(
            "$.resource_limits.kernel_space_heap_size",
            limits["kernel_space_heap_size"],
            f"kernel_space_heap_size is larger than kernel_space_heap_max_size "
            f"{limits['kernel_space_heap_max_size']!r}: wrong configuration",
        )

    mounts = doc.get("mount")
    if rel.honours_mounts(r) and isinstance(mounts, list):
        yield from _root_mount(mounts)
        yield from _unique_targets(mounts)
        kernel_heap = heap_max if heap_max is not None else heap
        for parts, m in _walk_mounts(mounts, ["mount"]):
            yield from _mount_rules(release, parts, m, kernel_heap)


def _walk_mounts(mounts: list[Any], parts: list[PathPart]) -> Iterator[tuple]:
    for i, m in enumerate(mounts):
        if isinstance(m, dict):
            yield parts + [i], m
            layers = m.get("options", {}).get("layers") if isinstance(m.get("options"), dict) else None
            if isinstance(layers, list):
                yield from _walk_mounts(layers, parts + [i, "options", "layers"])


def _root_mount(mounts: list[Any]) -> Iterator[Problem]:
    roots = [
        (i, m)
        for i, m in enumerate(mounts)
        if isinstance(m, dict) and m.get("target") == "/" and m.get("type") == "unionfs"
    ]
    if not roots:
        targets = [m.get("target") for m in mounts if isinstance(m, dict)]
        yield Problem(
            "$.mount", targets, 'the root UnionFS is not valid: add an entry with target "/" and type "unionfs"'
        )
        return
    i, root = roots[0]
    opts = root.get("options")
    layers = opts.get("layers") if isinstance(opts, dict) else None
    if not isinstance(layers, list) or not layers:
        yield Problem(
            json_path(["mount", i, "options", "layers"]),
            MISSING if layers is None else layers,
            "the root UnionFS must be given layers",
        )
        return
    image_ok = any(
        isinstance(layer, dict)
        and layer.get("target") == "/"
        and layer.get("type") == "sefs"
        and isinstance(layer.get("options"), dict)
        and "MAC" in layer["options"]
        for layer in layers
    )
    if not image_ok:
        yield Problem(
            json_path(["mount", i, "options", "layers"]),
            layers,
            'the image SEFS in layers is not valid: one layer needs target "/", type "sefs" '
            'and options.MAC ("" is fine; the build fills it in)',
        )


def _unique_targets(mounts: list[Any]) -> Iterator[Problem]:
    seen: dict[Any, int] = {}
    for i, m in enumerate(mounts):
        if isinstance(m, dict) and isinstance(m.get("target"), str):
            if m["target"] in seen:
                yield Problem(
                    json_path(["mount", i, "target"]),
                    m["target"],
                    f"mount target already used by $.mount[{seen[m['target']]}]",
                )
            else:
                seen[m["target"]] = i


def _mount_rules(
    release: str, parts: list[PathPart], m: dict[str, Any], kernel_heap: Optional[int]
) -> Iterator[Problem]:
    raw_opts = m.get("options")
    opts: dict[str, Any] = raw_opts if isinstance(raw_opts, dict) else {}
    kind = m.get("type")
    if opts.get("temporary") is True and "MAC" in opts:
        yield Problem(json_path(parts + ["options"]), opts, "integrity protected SEFS cannot be temporary")
    if "cache_size" in opts:
        where = json_path(parts + ["options", "cache_size"])
        value = opts["cache_size"]
        if not rel.has_sefs_cache_size(release):
            yield Problem(where, value, f"unknown key: {_key_hint(release, 'mount.options.cache_size')}")
        elif kind != "sefs":
            yield Problem(where, value, "cache_size applies to sefs mounts only")
        elif isinstance(value, str):
            try:
                size = parse_size(value)
            except SizeError:
                size = None  # reported by the schema
            if size is not None and (
                size < SEFS_MIN_CACHE_SIZE or size % SEFS_CACHE_PAGE or (kernel_heap is not None and size > kernel_heap)
            ):
                yield Problem(
                    where,
                    value,
                    f"the cache_size must be at least {SEFS_MIN_CACHE_SIZE} bytes, a multiple of "
                    f"{SEFS_CACHE_PAGE}, and at most the kernel heap max ({kernel_heap} bytes)",
                )
    if kind == "ext2":
        if "disk_size" not in opts:
            yield Problem(
                json_path(parts + ["options", "disk_size"]), MISSING, "the disk_size must be specified for ext2"
            )
        elif isinstance(opts["disk_size"], str):
            try:
                size = parse_size(opts["disk_size"])
            except SizeError:
                size = None
            if size is not None and size < EXT2_MIN_DISK_SIZE:
                yield Problem(
                    json_path(parts + ["options", "disk_size"]),
                    opts["disk_size"],
                    f"the disk_size is too small; the minimum is 5GB ({EXT2_MIN_DISK_SIZE} bytes)",
                )
    elif "disk_size" in opts:
        yield Problem(
            json_path(parts + ["options", "disk_size"]), opts["disk_size"], "disk_size applies to ext2 mounts only"
        )
