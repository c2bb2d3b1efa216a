"""The path bounds that keep Pants' engine from crashing, and the names that display as others."""

from __future__ import annotations

import pytest

from occlum import image_paths
from occlum.image_paths import (
    DIGEST_DEPTH,
    ENGINE_FAILS_AT,
    MAX_IMAGE_DEPTH,
    MAX_OUTPUT_DEPTH,
    PathError,
    enclave_dir,
    enclave_file,
    mount_point,
    relative_output,
)


def deep(n: int, absolute: bool = True) -> str:
    return ("/" if absolute else "") + "/".join(f"d{i}" for i in range(n))


def test_every_digest_path_stays_below_the_engines_measured_limit() -> None:
    # The deepest digest path the backend makes: an image path at its bound under the deepest
    # nesting (dist/<output_path at its bound>/image/...). ENGINE_FAILS_AT is measured by
    # bench/engine_limits.py; a margin of 8 leaves room for a release not yet measured.
    assert DIGEST_DEPTH == MAX_OUTPUT_DEPTH + 1 + MAX_IMAGE_DEPTH
    assert DIGEST_DEPTH + 8 <= min(ENGINE_FAILS_AT.values()) - 1


@pytest.mark.parametrize(
    "check, bound",
    [(enclave_file, MAX_IMAGE_DEPTH), (mount_point, MAX_IMAGE_DEPTH), (enclave_dir, MAX_IMAGE_DEPTH - 1)],
    ids=["files-key", "mount-target", "jdk_dir-or-jar_dir"],
)
def test_image_path_depth_boundary(check, bound: int) -> None:
    assert check(deep(bound)) == deep(bound)
    with pytest.raises(PathError) as e:
        check(deep(bound + 1))
    assert f"has {bound + 1} components; at most {bound} are allowed" in str(e.value)
    assert "Pants' engine crashes" in str(e.value)


def test_a_folder_leaves_room_for_what_goes_under_it() -> None:
    assert enclave_dir(deep(10), room=6) == deep(10)
    with pytest.raises(PathError, match="at most 10 are allowed, leaving room for 6 under it"):
        enclave_dir(deep(11), room=6)


def test_output_path_depth_boundary() -> None:
    assert relative_output(deep(MAX_OUTPUT_DEPTH, absolute=False)) == deep(MAX_OUTPUT_DEPTH, absolute=False)
    with pytest.raises(PathError, match=f"has 9 components; at most {MAX_OUTPUT_DEPTH} are allowed under dist/"):
        relative_output(deep(MAX_OUTPUT_DEPTH + 1, absolute=False))


FORMAT_AND_LOOKALIKES = [
    ("\u202e", "RIGHT-TO-LEFT OVERRIDE (U+202E)"),
    ("\u200b", "ZERO WIDTH SPACE (U+200B)"),
    ("\u2066", "LEFT-TO-RIGHT ISOLATE (U+2066)"),
    ("\ufeff", "ZERO WIDTH NO-BREAK SPACE (U+FEFF)"),
    ("\u00ad", "SOFT HYPHEN (U+00AD)"),
    ("\u2215", "DIVISION SLASH (U+2215), which looks like `/`"),
    ("\u2044", "FRACTION SLASH (U+2044), which looks like `/`"),
    ("\uff0f", "FULLWIDTH SOLIDUS (U+FF0F), which looks like `/`"),
    ("\u29f8", "BIG SOLIDUS (U+29F8), which looks like `/`"),
]


@pytest.mark.parametrize("char, named", FORMAT_AND_LOOKALIKES, ids=[n.split(" (")[0] for _, n in FORMAT_AND_LOOKALIKES])
@pytest.mark.parametrize(
    "check, path",
    [
        (enclave_file, "/etc/app{c}.yml"),
        (enclave_dir, "/usr/lib{c}jvm"),
        (mount_point, "/da{c}ta"),
        (relative_output, "svc/encl{c}ave"),
    ],
    ids=["files-key", "jdk_dir", "mount", "output_path"],
)
def test_format_characters_and_lookalike_slashes_are_refused(check, path: str, char: str, named: str) -> None:
    with pytest.raises(PathError) as e:
        check(path.format(c=char))
    assert named in str(e.value)


def test_plain_non_ascii_names_still_pass() -> None:
    # Letters of any script are fine; only what displays as something else is refused.
    assert enclave_file("/etc/café/配置.yml") == "/etc/café/配置.yml"
    assert image_paths.invisible_or_lookalike("Ünïcödé-名前") is None
