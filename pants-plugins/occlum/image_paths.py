"""Paths as they enter from BUILD files: checked where they are written, so nothing reaches the
engine or dist/ that makes it loop, panic or fail half-way.

Pure: no Pants imports. Each check returns the normalised path or raises PathError, whose message
is the tail of a sentence the caller starts with the field and target ("... which <tail>").
"""

from __future__ import annotations

import re

# Linux file systems take names of at most 255 bytes; a path far past a JDK's deepest (~120 bytes)
# is a mistake, and Pants writes dist/ with the OS's own limits (PATH_MAX 4096).
MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PathError(ValueError):
    """Why a path is refused: the tail of "The `x` field in target y has the path 'p', which ..."."""


def shown(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def _components(path: str, *, in_image: bool = True) -> list[str]:
    control = _CONTROL.search(path)
    if control:
        raise PathError(f"holds the control character {control.group()!r}")
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
    return parts


def enclave_file(path: object) -> str:
    """An absolute path of a file in the enclave image: "/etc//app.yml" -> "/etc/app.yml"."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise PathError("is not absolute; it must start with `/`")
    if path.endswith("/"):
        raise PathError("ends with `/`; name the file itself")
    parts = _components(path)
    if not parts:
        raise PathError("is the image root; name a file")
    return "/" + "/".join(parts)


def enclave_dir(path: object) -> str:
    """An absolute folder in the enclave image other than its root: "/srv/" -> "/srv"."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise PathError("is not absolute; it must start with `/`")
    parts = _components(path)
    if not parts:
        raise PathError("is the image root; name a folder under it")
    return "/" + "/".join(parts)


def mount_point(path: str) -> str:
    """An absolute mount target (the root included): the length, control-character and UTF-8
    checks of image paths; `$` is allowed, as mounts are not copied by copy_bom."""
    return "/" + "/".join(_components(path, in_image=False))


def relative_output(path: object) -> str:
    """A path under dist/: relative, no `.`/`..`: "svc//enclave/" -> "svc/enclave"."""
    if not isinstance(path, str) or not path.strip("/"):
        raise PathError("is empty; name a folder under dist/")
    if path.startswith("/"):
        raise PathError("is absolute; it must be relative to dist/")
    return "/".join(_components(path, in_image=False))
