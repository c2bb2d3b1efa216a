"""Typed inputs for an Occlum.json, and rendering them for one Occlum release.

The rendered document is shaped like that release's `occlum init` template
(same keys, same order) so diffs against a hand-made instance stay readable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Union, cast

from occlum.config import releases as rel
from occlum.config.sizes import SizeError, format_size, parse_size
from occlum.image_paths import PathError, mount_point, shown

MOUNT_TYPES = ("hostfs", "sefs", "ramfs")
MOUNT_KEYS = ("target", "type", "source", "options")
# Options a user mount may carry, per type (docs/occlum-contract.md §1.7). MAC is reserved for
# the root image layer, which the renderer writes itself.
_MOUNT_OPTIONS: dict[str, tuple[str, ...]] = {
    "sefs": ("cache_size", "temporary"),
    "hostfs": (),
    "ramfs": (),
}
# Targets owned by the default mount table (or auto-added from 0.29.6).
RESERVED_TARGETS = ("/", "/host", "/proc", "/dev")
PAGE = 4096
SEFS_MIN_CACHE_SIZE = 196608  # 48 pages; v0.31.0 rootfs.rs
U16_MAX = 0xFFFF
U32_MAX = 0xFFFFFFFF

OptionValue = Union[bool, int, str]


class UnsupportedFeatureError(ValueError):
    """The inputs ask for something the chosen release would silently ignore."""


def as_written(value: object) -> object:
    """A BUILD value as the user wrote it, for messages: Pants 2.30+ hands dicts over as FrozenDicts,
    whose repr is not what is in the BUILD file."""
    if isinstance(value, Mapping):
        return {k: as_written(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_written(v) for v in value]
    if isinstance(value, tuple):
        return tuple(as_written(v) for v in value)
    return value


class MountError(ValueError):
    """A mount entry that Occlum cannot take. The message continues `<where the entry is> `,
    e.g. "The `mounts` field in target //svc:enclave, entry 0 " + message."""


def _check_abspath(what: str, path: object) -> None:
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise ValueError(f"{what} must be an absolute path string, got {path!r}")


@dataclass(frozen=True)
class Mount:
    """An extra mount appended after the release's default mount table.

    The one place that knows what a user mount may be: the `mounts` field builds these from its
    dicts (`Mount.from_dict`) and reports a MountError with the field and entry named.
    """

    target: str
    type: str
    source: Optional[str] = None
    # Given as a Mapping or as pairs; always sorted (key, value) pairs after __post_init__.
    # cache_size may be given as bytes or as an Occlum size string; stored as bytes.
    options: Union[Mapping[str, OptionValue], tuple[tuple[str, OptionValue], ...]] = ()

    @classmethod
    def from_dict(cls, raw: object) -> Mount:
        """A mount from a BUILD-file dict; `//data/` is read as `/data`. Any Mapping: Pants 2.30+
        freezes BUILD values, so the dict arrives as a FrozenDict."""
        if not isinstance(raw, Mapping):
            raise MountError(f"must be a dict with `target` and `type`, but was {as_written(raw)!r}.")
        unknown = sorted(set(raw) - set(MOUNT_KEYS))
        if unknown:
            raise MountError(f"has unknown keys {unknown}; allowed: {', '.join(MOUNT_KEYS)}.")
        options = raw.get("options") or {}
        if not isinstance(options, Mapping) or not all(
            isinstance(k, str) and isinstance(v, (str, bool)) for k, v in options.items()
        ):
            raise MountError(
                "needs `options` to be a dict of strings or booleans (e.g. "
                f'{{"temporary": True}}), but was {as_written(options)!r}.'
            )
        written = target = raw.get("target")
        if isinstance(target, str) and target.startswith("/"):
            target = re.sub("/+", "/", target).rstrip("/") or "/"
        if target in RESERVED_TARGETS:
            raise MountError(_reserved(written))
        return cls(target, raw.get("type"), raw.get("source"), options)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        target = self.target
        parts = target.split("/")[1:] if isinstance(target, str) else []
        if (
            not isinstance(target, str)
            or not target.startswith("/")
            or "\0" in target
            or any(p in ("", ".", "..") for p in parts if target != "/")
        ):
            raise MountError(
                "needs `target` to be an absolute path in the enclave (no `.` or `..`), but was "
                f'{target!r}. Write e.g. "/data".'
            )
        try:
            mount_point(target)
        except PathError as e:
            raise MountError(f"has the target {shown(target)}, which {e}.") from None
        if target in RESERVED_TARGETS:
            raise MountError(_reserved(target))
        if self.type not in MOUNT_TYPES:
            raise MountError(f"has type {self.type!r}; allowed: {', '.join(MOUNT_TYPES)}.")
        if self.type == "ramfs":
            if self.source is not None:
                raise MountError("is a ramfs, which takes no `source`; remove it.")
        elif not isinstance(self.source, str) or not self.source:
            raise MountError(f'is a {self.type}, which needs `source` (a host path such as "./data").')
        raw = self.options.items() if isinstance(self.options, Mapping) else self.options
        opts = dict(raw)
        allowed = _MOUNT_OPTIONS[self.type]
        unknown = sorted(set(opts) - set(allowed))
        if unknown:
            raise MountError(
                f"has options {unknown}, which a {self.type} mount does not take; allowed: "
                f"{', '.join(allowed) or 'none'}."
            )
        if "temporary" in opts and not isinstance(opts["temporary"], bool):
            raise MountError(f"needs `options.temporary` to be True or False, but was {opts['temporary']!r}.")
        if "cache_size" in opts:
            opts["cache_size"] = _cache_size(opts["cache_size"])
        object.__setattr__(self, "options", tuple(sorted(opts.items())))

    @property
    def option_pairs(self) -> tuple[tuple[str, OptionValue], ...]:
        return cast("tuple[tuple[str, OptionValue], ...]", self.options)  # normalised in __post_init__

    def option(self, key: str) -> Optional[OptionValue]:
        return dict(self.option_pairs).get(key)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"target": self.target, "type": self.type}
        if self.source is not None:
            doc["source"] = self.source
        if self.option_pairs:
            doc["options"] = {k: format_size(int(v)) if k == "cache_size" else v for k, v in self.option_pairs}
        return doc


def _reserved(target: object) -> str:
    return f"mounts {target!r}, which Occlum mounts itself ({', '.join(RESERVED_TARGETS)}). Pick another path."


def _cache_size(value: object) -> int:
    allowed = f'a size string such as "1MB" of whole 4KB pages, at least {format_size(SEFS_MIN_CACHE_SIZE)}'
    try:
        cache = parse_size(value) if isinstance(value, str) else value
    except SizeError as e:
        raise MountError(f"needs `options.cache_size` to be {allowed}, but was {value!r}: {e}") from None
    if isinstance(cache, bool) or not isinstance(cache, int) or cache < SEFS_MIN_CACHE_SIZE or cache % PAGE:
        raise MountError(f"needs `options.cache_size` to be {allowed}, but was {value!r}.")
    return cache


@dataclass(frozen=True)
class Limit:
    """One of the resource limits an image may set by hand (else the sizing model derives it).

    `name` is the BUILD field, the OcclumConfigInputs attribute and the memory model's knob;
    `key` is where Occlum.json holds it.
    """

    name: str
    key: str
    is_size: bool = True
    # Written only when set, and only from `since` (an Occlum release) on: the EDMM maxima.
    optional: bool = False
    since: str = "0.20.0"


# Every hand-settable limit, in one place: the BUILD fields, the memory plan and its report, the
# config inputs' checks and the map from Occlum.json paths to fields iterate over this.
# OcclumConfigInputs names each as an attribute (model_test checks that they match).
LIMITS = (
    Limit("user_space_size", "resource_limits.user_space_size"),
    # Without EDMM the static user space when set (it then replaces user_space_size); with EDMM the
    # most the user space may grow to (docs/occlum-contract.md §1.4).
    Limit(
        "user_space_max_size",
        "resource_limits.user_space_max_size",
        optional=True,
        since=rel.USER_SPACE_MAX_SIZE_SINCE,
    ),
    Limit("kernel_space_heap_size", "resource_limits.kernel_space_heap_size"),
    Limit(
        "kernel_space_heap_max_size",
        "resource_limits.kernel_space_heap_max_size",
        optional=True,
        since=rel.KERNEL_SPACE_HEAP_MAX_SIZE_SINCE,
    ),
    Limit("kernel_space_stack_size", "resource_limits.kernel_space_stack_size"),
    Limit("max_num_of_threads", "resource_limits.max_num_of_threads", is_size=False),
    Limit("default_heap_size", "process.default_heap_size"),
    Limit("default_stack_size", "process.default_stack_size"),
    Limit("default_mmap_size", "process.default_mmap_size"),
)
_SIZE_FIELDS = tuple(limit.name for limit in LIMITS if limit.is_size and not limit.optional)
_OPTIONAL_SIZES = tuple(limit.name for limit in LIMITS if limit.optional)


@dataclass(frozen=True)
class OcclumConfigInputs:
    """Everything the plugin decides about an enclave; sizes are in bytes.

    user_space_size is always the real user space: releases before 0.30.0
    ignore user_space_max_size, so it is only an addition for >= 0.30.0.
    """

    user_space_size: int
    kernel_space_heap_size: int
    kernel_space_stack_size: int
    max_num_of_threads: int
    default_heap_size: int
    default_stack_size: int
    default_mmap_size: int
    entry_points: tuple[str, ...]
    env_default: tuple[str, ...] = ()
    env_untrusted: tuple[str, ...] = ()
    # Release enclaves by default: a debuggable enclave leaks its memory to the host.
    debuggable: bool = False
    product_id: int = 0
    version_number: int = 0
    user_space_max_size: Optional[int] = None
    kernel_space_heap_max_size: Optional[int] = None
    extra_mounts: tuple[Mount, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("entry_points", "env_default", "env_untrusted", "extra_mounts"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)):
                raise ValueError(f"{name} must be a sequence, not a single string")
            object.__setattr__(self, name, tuple(value))
        sizes = [*_SIZE_FIELDS, *(name for name in _OPTIONAL_SIZES if getattr(self, name) is not None)]
        for name in sizes:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % PAGE:
                raise ValueError(f"{name} must be a positive multiple of 4KB in bytes, got {value!r}")
        if self.user_space_max_size is not None and self.user_space_max_size < self.user_space_size:
            raise ValueError(
                f"user_space_max_size ({format_size(self.user_space_max_size)}) is smaller than "
                f"user_space_size ({format_size(self.user_space_size)})"
            )
        kernel_max = self.kernel_space_heap_max_size
        if kernel_max is not None and kernel_max < self.kernel_space_heap_size:
            raise ValueError(
                f"kernel_space_heap_max_size ({format_size(kernel_max)}) is smaller than "
                f"kernel_space_heap_size ({format_size(self.kernel_space_heap_size)})"
            )
        _check_int("max_num_of_threads", self.max_num_of_threads, 1, U32_MAX)
        _check_int("product_id", self.product_id, 0, U16_MAX)
        _check_int("version_number", self.version_number, 0, U16_MAX)
        if not isinstance(self.debuggable, bool):
            raise ValueError(f"debuggable must be a bool, got {self.debuggable!r}")
        if not self.entry_points:
            raise ValueError("entry_points must name at least one absolute directory")
        for p in self.entry_points:
            _check_abspath("entry point", p)
        for kv in self.env_default:
            key, sep, _ = kv.partition("=") if isinstance(kv, str) else ("", "", "")
            if not sep or not key or "\0" in kv:
                raise ValueError(f"env_default entries must be KEY=VALUE, got {kv!r}")
        for name in self.env_untrusted:
            if not isinstance(name, str) or not name or "=" in name or "\0" in name:
                raise ValueError(f"env_untrusted entries must be variable names, got {name!r}")
        seen = set()
        for m in self.extra_mounts:
            if not isinstance(m, Mount):
                raise ValueError(f"extra_mounts entries must be Mount, got {m!r}")
            if m.target in seen:
                raise ValueError(f"mount target {m.target!r} appears twice")
            seen.add(m.target)
            cache = m.option("cache_size")
            if isinstance(cache, int) and cache > self.kernel_space_heap_size:
                raise ValueError(
                    f"mount {m.target!r}: cache_size {format_size(cache)} exceeds the kernel heap "
                    f"({format_size(self.kernel_space_heap_size)})"
                )


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")


def default_mounts(release: str) -> list[dict[str, Any]]:
    """The mount list of the release's `occlum init` template (fresh objects)."""
    if not rel.honours_mounts(release):
        # 0.20.0 ignores this list; written as its template has it.
        return [
            {
                "target": "/",
                "type": "unionfs",
                "options": {
                    "layers": [
                        {"target": "/", "type": "sefs", "source": "./image", "options": {"integrity_only": True}},
                        {"target": "/", "type": "sefs"},
                    ]
                },
            },
            {"target": "/host", "type": "hostfs", "source": "."},
            {"target": "/proc", "type": "procfs"},
            {"target": "/tmp", "type": "sefs", "options": {"temporary": True}},
            {"target": "/dev", "type": "devfs"},
        ]
    mounts: list[dict[str, Any]] = [
        # MAC "" is a placeholder gen_internal_conf replaces; the key must exist.
        {
            "target": "/",
            "type": "unionfs",
            "options": {
                "layers": [
                    {"target": "/", "type": "sefs", "source": "./build/mount/__ROOT", "options": {"MAC": ""}},
                    {"target": "/", "type": "sefs", "source": "./run/mount/__ROOT"},
                ]
            },
        },
        {"target": "/host", "type": "hostfs", "source": "."},
    ]
    if rel.has_tmp_in_template(release):
        mounts.append({"target": "/tmp", "type": "sefs", "source": "./run/mount/tmp", "options": {"temporary": True}})
    if not rel.auto_adds_proc_dev(release):
        mounts += [{"target": "/proc", "type": "procfs"}, {"target": "/dev", "type": "devfs"}]
    return mounts


def render_occlum_json(release: str, inputs: OcclumConfigInputs) -> dict[str, Any]:
    """The Occlum.json dict for `release`; raises UnsupportedFeatureError for inputs it would ignore."""
    r = rel.parse_release(release)
    if inputs.extra_mounts and not rel.honours_mounts(r):
        raise UnsupportedFeatureError(
            f"Occlum {release} ignores the mount list in Occlum.json; extra mounts need >= 0.21.0"
        )
    if any(m.option("cache_size") is not None for m in inputs.extra_mounts) and not rel.has_sefs_cache_size(r):
        raise UnsupportedFeatureError(f"sefs cache_size needs Occlum >= 0.29.5, not {release}")

    user = format_size(inputs.user_space_size)
    heap = format_size(inputs.kernel_space_heap_size)
    stack = format_size(inputs.kernel_space_stack_size)
    if rel.honours_mounts(r):
        limits: dict[str, Any] = {
            "kernel_space_heap_size": heap,
            "kernel_space_stack_size": stack,
            "user_space_size": user,
        }
    else:  # 0.20.0 template order
        limits = {"user_space_size": user, "kernel_space_heap_size": heap, "kernel_space_stack_size": stack}
    if inputs.user_space_max_size is not None and rel.has_user_space_max_size(r):
        limits["user_space_max_size"] = format_size(inputs.user_space_max_size)
    if inputs.kernel_space_heap_max_size is not None and rel.has_kernel_space_heap_max_size(r):
        limits["kernel_space_heap_max_size"] = format_size(inputs.kernel_space_heap_max_size)
    limits["max_num_of_threads"] = inputs.max_num_of_threads

    metadata: dict[str, Any] = {
        "product_id": inputs.product_id,
        "version_number": inputs.version_number,
        "debuggable": inputs.debuggable,
    }
    if rel.has_kss(r):
        metadata["enable_kss"] = False
        metadata["family_id"] = {"high": "0x0", "low": "0x0"}
        metadata["ext_prod_id"] = {"high": "0x0", "low": "0x0"}
    if rel.has_metadata_pkru(r):
        metadata["pkru"] = 0
    if rel.has_metadata_amx(r):
        metadata["amx"] = 0

    doc: dict[str, Any] = {
        "resource_limits": limits,
        "process": {
            "default_stack_size": format_size(inputs.default_stack_size),
            "default_heap_size": format_size(inputs.default_heap_size),
            "default_mmap_size": format_size(inputs.default_mmap_size),
        },
        "entry_points": list(inputs.entry_points),
        "env": {"default": list(inputs.env_default), "untrusted": list(inputs.env_untrusted)},
        "metadata": metadata,
    }
    if rel.has_feature_object(r):
        feature: dict[str, Any] = {"amx": 0, "pkru": 0}
        if rel.has_io_uring(r):
            feature["io_uring"] = 0
        feature["enable_edmm"] = False
        feature["enable_posix_shm"] = False
        doc["feature"] = feature

    mounts = default_mounts(release)
    taken = {m["target"] for m in mounts}
    for m in inputs.extra_mounts:
        if m.target in taken:
            raise ValueError(f"extra mount target {m.target!r} clashes with Occlum {release}'s default mounts")
        mounts.append(m.to_json())
    doc["mount"] = mounts
    return doc


__all__ = [
    "LIMITS",
    "Limit",
    "Mount",
    "MountError",
    "OcclumConfigInputs",
    "UnsupportedFeatureError",
    "SizeError",
    "default_mounts",
    "parse_size",
    "render_occlum_json",
]
