"""Supported Occlum releases, their config generations, and feature predicates.

Feature predicates encode the timeline of docs/occlum-contract.md §1.5 so the model and the
validator agree on what each release understands.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

Release = tuple[int, int, int]

# Every release with a template in tests/data/occlum/templates, plus the
# other tags the contract was read at (v0.26.0, v0.29.1-v0.29.3).
SUPPORTED_RELEASES: tuple[str, ...] = (
    "0.20.0",
    "0.21.0",
    "0.22.0",
    "0.23.7",
    "0.24.0",
    "0.24.1",
    "0.24.2",
    "0.25.0",
    "0.26.0",
    "0.26.3",
    "0.26.4",
    "0.27.3",
    "0.28.0",
    "0.28.1",
    "0.29.0",
    "0.29.1",
    "0.29.2",
    "0.29.3",
    "0.29.4",
    "0.29.5",
    "0.29.6",
    "0.29.7",
    "0.30.0",
    "0.30.1",
    "0.31.0",
)

_RELEASE_RE = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


class UnknownReleaseError(ValueError):
    """A release string that is malformed or not in SUPPORTED_RELEASES."""

    def __init__(self, release: object) -> None:
        super().__init__(f"unknown Occlum release {release!r}; supported releases: {', '.join(SUPPORTED_RELEASES)}")
        self.release = release


def parse_release(release: str) -> Release:
    """'0.31.0' or 'v0.31.0' -> (0, 31, 0); raises UnknownReleaseError if unsupported."""
    m = _RELEASE_RE.fullmatch(release.strip()) if isinstance(release, str) else None
    if not m:
        raise UnknownReleaseError(release)
    parsed = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if "%d.%d.%d" % parsed not in SUPPORTED_RELEASES:
        raise UnknownReleaseError(release)
    return parsed


def normalize_release(release: str) -> str:
    """Canonical spelling used in SUPPORTED_RELEASES and index.json ('v0.31.0' -> '0.31.0')."""
    return "%d.%d.%d" % parse_release(release)


def _r(release: str | Release) -> Release:
    return release if isinstance(release, tuple) else parse_release(release)


# Feature predicates (docs/occlum-contract.md §1.5). Each takes a release string or tuple.
def honours_mounts(r: str | Release) -> bool:
    """0.20.0 ignores the user mount list and hard-codes its own."""
    return _r(r) >= (0, 21, 0)


def has_tmp_in_template(r: str | Release) -> bool:
    """The /tmp temporary sefs is in the 0.21/0.22 templates; the 0.23.7 one already lacks it."""
    return (0, 21, 0) <= _r(r) < (0, 23, 0)


def has_kss(r: str | Release) -> bool:
    """metadata.enable_kss/family_id/ext_prod_id exist and are required."""
    return _r(r) >= (0, 26, 3)


def has_metadata_pkru(r: str | Release) -> bool:
    """metadata.pkru: required in 0.28.x, optional in 0.29.x/0.30.0, moved to feature in 0.30.1."""
    return (0, 28, 0) <= _r(r) < (0, 30, 1)


def requires_metadata_pkru(r: str | Release) -> bool:
    return (0, 28, 0) <= _r(r) < (0, 29, 0)


def has_metadata_amx(r: str | Release) -> bool:
    return _r(r) == (0, 30, 0)


def has_print(r: str | Release) -> bool:
    """`occlum print mrsigner|mrenclave`."""
    return _r(r) >= (0, 29, 1)


def has_package_debug(r: str | Release) -> bool:
    """`occlum package --debug` (added in 0.23.x: `tools/occlum` at 0.23.7 has it, 0.23.0 does not);
    before it, package refuses SIM instances and only warns when debuggable."""
    return _r(r) >= (0, 23, 7)


def has_ra_config(r: str | Release) -> bool:
    """The ra_config format of Occlum's attestation flows (grpc_ratls, init_ra): in Occlum's sources
    from 0.27.1 (`ra_config_template.json`); 0.27.3 is the first supported release with it."""
    return _r(r) >= (0, 27, 1)


# The releases that brought the EDMM maxima: config/model.py's LIMITS name them for their fields.
KERNEL_SPACE_HEAP_MAX_SIZE_SINCE = "0.29.4"
USER_SPACE_MAX_SIZE_SINCE = "0.30.0"


def has_kernel_space_heap_max_size(r: str | Release) -> bool:
    return _r(r) >= parse_release(KERNEL_SPACE_HEAP_MAX_SIZE_SINCE)


def has_sefs_cache_size(r: str | Release) -> bool:
    return _r(r) >= (0, 29, 5)


def auto_adds_proc_dev(r: str | Release) -> bool:
    """gen_conf adds /proc and /dev itself; the template no longer lists them."""
    return _r(r) >= (0, 29, 6)


def has_user_space_max_size(r: str | Release) -> bool:
    """Also brings init_num_of_threads and EDMM."""
    return _r(r) >= parse_release(USER_SPACE_MAX_SIZE_SINCE)


def has_feature_object(r: str | Release) -> bool:
    """Top-level `feature` exists and is required."""
    return _r(r) >= (0, 30, 1)


def has_disable_log(r: str | Release) -> bool:
    return _r(r) >= (0, 30, 1)


def has_io_uring(r: str | Release) -> bool:
    return _r(r) >= (0, 31, 0)


def has_ext2(r: str | Release) -> bool:
    return _r(r) >= (0, 31, 0)


def has_copy_bom(r: str | Release) -> bool:
    return _r(r) >= (0, 24, 1)


# Keys a schema generation allows for part of its range only; the validator
# rejects them before these releases (the real tool would silently ignore them).
KEY_INTRODUCED: dict[str, str] = {
    "resource_limits.kernel_space_heap_max_size": "0.29.4",
    "resource_limits.user_space_max_size": "0.30.0",
    "resource_limits.init_num_of_threads": "0.30.0",
    "mount.options.cache_size": "0.29.5",
    "mount.options.disk_size": "0.31.0",
    "metadata.disable_log": "0.30.1",
    "metadata.enable_kss": "0.26.3",
    "metadata.family_id": "0.26.3",
    "metadata.ext_prod_id": "0.26.3",
    "feature": "0.30.1",
    "feature.io_uring": "0.31.0",
}
# Keys that moved away: where to put them instead.
KEY_MOVED: dict[str, str] = {
    "metadata.pkru": "feature.pkru (since 0.30.1)",
    "metadata.amx": "feature.amx (since 0.30.1)",
}


def schemas_dir() -> Path:
    """<occlum package>/schemas if it was bundled there, else <repo>/schemas."""
    here = Path(__file__).resolve()
    bundled = here.parents[1] / "schemas"
    return bundled if bundled.is_dir() else here.parents[3] / "schemas"


@cache
def schema_index() -> dict[str, str]:
    """index.json: release -> schema file name."""
    return json.loads((schemas_dir() / "index.json").read_text(encoding="utf-8"))


def schema_file_for(release: str) -> Path:
    return schemas_dir() / schema_index()[normalize_release(release)]
