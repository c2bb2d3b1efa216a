"""Paths as they enter from BUILD files: checked where they are written, so nothing reaches the
engine or dist/ that makes it loop, panic or fail half-way.

Pure: no Pants imports. Each check returns the normalised path or raises PathError, whose message
is the tail of a sentence the caller starts with the field and target ("... which <tail>").
"""

from __future__ import annotations

import re
import unicodedata

# Linux file systems take names of at most 255 bytes; a path far past a JDK's deepest (~120 bytes)
# is a mistake, and Pants writes dist/ with the OS's own limits (PATH_MAX 4096).
MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 1024

# Depth. Pants' engine copies a digest into a sandbox or dist/ by recursing once per folder on a
# worker thread's stack, and a path nested too deep kills the process (SIGSEGV, no message) or
# pantsd. bench/engine_limits.py measures where, with Pants' own `files` + `archive` targets only:
# ENGINE_FAILS_AT gives, per release run here, the fewest path components that crashed. The
# backend's digests put an image path under at most IMAGE_NESTING folders (`dist/<output_path>/
# image/...` for a staged instance, `occlum_instance/run/mount/__ROOT/...` inside the toolchain's
# sandbox), so any path they hold has at most DIGEST_DEPTH components, well below every figure.
ENGINE_FAILS_AT = {"2.17.1": 35, "2.30.2": 59, "2.31.0": 59, "2.33.0": 62}
MAX_IMAGE_DEPTH = 16  # components of a path in the enclave image, its file name included
MAX_OUTPUT_DEPTH = 8  # components of `output_path`
IMAGE_NESTING = max(MAX_OUTPUT_DEPTH + 1, 4)
DIGEST_DEPTH = IMAGE_NESTING + MAX_IMAGE_DEPTH
ENGINE_REASON = (
    f"Pants' engine crashes on paths about {min(ENGINE_FAILS_AT.values())} components deep, and the backend "
    "nests image paths inside its own folders"
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Characters drawn like a slash (or backslash) that are not one: "a\u2215b" shows as a/b but is one
# name. Unicode category Cf (bidirectional controls such as U+202E, zero-width characters) is
# refused too: a name that displays as another.
LOOKALIKE_SLASHES = frozenset("\u2044\u2215\u2571\u2572\u29f5\u29f8\u29f9\ufe68\uff0f\uff3c\u3033\u2cc6")


class PathError(ValueError):
    """Why a path is refused: the tail of "The `x` field in target y has the path 'p', which ..."."""


def quoted(text: str) -> str:
    """repr(), with characters that display as others escaped, so the message shows what is there."""
    out = repr(text)
    for ch in set(text):
        if ch in LOOKALIKE_SLASHES or unicodedata.category(ch) == "Cf":
            out = out.replace(ch, f"\\u{ord(ch):04x}")
    return out


def shown(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def invisible_or_lookalike(text: str) -> str | None:
    """Why `text` may display as something else, or None: a format character (Unicode category Cf)
    or a character drawn like a slash."""
    for ch in text:
        if ch in LOOKALIKE_SLASHES:
            name = unicodedata.name(ch, "a slash-like character")
            return f"holds {name} (U+{ord(ch):04X}), which looks like `/` but is not one"
        if unicodedata.category(ch) == "Cf":
            name = unicodedata.name(ch, "a format character")
            return (
                f"holds the invisible format character {name} (U+{ord(ch):04X}), which makes a name display as another"
            )
    return None


def _components(
    path: str, *, in_image: bool = True, max_depth: int = MAX_IMAGE_DEPTH, why_depth: str = ""
) -> list[str]:
    control = _CONTROL.search(path)
    if control:
        raise PathError(f"holds the control character {control.group()!r}")
    lookalike = invisible_or_lookalike(path)
    if lookalike:
        raise PathError(lookalike)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8 in the BUILD file
        raise PathError("holds characters that are not valid UTF-8; Occlum's tools read paths as UTF-8") from None
    if in_image and "$" in path:
        raise PathError("holds `$`, which Occlum's copy_bom expands as a variable in every path")
    size = len(path.encode("utf-8"))
    if size > MAX_PATH_BYTES:
        raise PathError(f"is {size} bytes long; at most {MAX_PATH_BYTES} are allowed")
    parts = [p for p in path.split("/") if p != ""]
    if any(p in (".", "..") for p in parts):
        raise PathError("has a `.` or `..` component; write the path without them")
    for p in parts:
        n = len(p.encode("utf-8"))
        if n > MAX_COMPONENT_BYTES:
            raise PathError(f"has the component {shown(p)} of {n} bytes; at most {MAX_COMPONENT_BYTES} are allowed")
    if len(parts) > max_depth:
        raise PathError(f"has {len(parts)} components; at most {max_depth} are allowed{why_depth} ({ENGINE_REASON})")
    return parts


def enclave_file(path: object) -> str:
    """An absolute path of a file in the enclave image: "/etc//app.yml" -> "/etc/app.yml"."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise PathError("is not absolute; it must start with `/`")
    if path.endswith("/"):
        raise PathError("ends with `/`; name the file itself")
    parts = _components(path, max_depth=MAX_IMAGE_DEPTH, why_depth=" in an image path")
    if not parts:
        raise PathError("is the image root; name a file")
    return "/" + "/".join(parts)


def enclave_dir(path: object, *, room: int = 1) -> str:
    """An absolute folder in the enclave image other than its root: "/srv/" -> "/srv". `room`: the
    components that go under it at least (the jar's name, the JDK's files)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise PathError("is not absolute; it must start with `/`")
    parts = _components(
        path,
        max_depth=MAX_IMAGE_DEPTH - room,
        why_depth=f", leaving room for {room} under it in an image path of {MAX_IMAGE_DEPTH}",
    )
    if not parts:
        raise PathError("is the image root; name a folder under it")
    return "/" + "/".join(parts)


def mount_point(path: str) -> str:
    """An absolute mount target (the root included): the length, control-character and UTF-8
    checks of image paths; `$` is allowed, as mounts are not copied by copy_bom."""
    return "/" + "/".join(_components(path, in_image=False, why_depth=" in an image path"))


def relative_output(path: object) -> str:
    """A path under dist/: relative, no `.`/`..`: "svc//enclave/" -> "svc/enclave"."""
    if not isinstance(path, str) or not path.strip("/"):
        raise PathError("is empty; name a folder under dist/")
    if path.startswith("/"):
        raise PathError("is absolute; it must be relative to dist/")
    return "/".join(_components(path, in_image=False, max_depth=MAX_OUTPUT_DEPTH, why_depth=" under dist/"))
