"""An Occlum `copy_bom` file for a staged image, so Occlum's own tool can rebuild the same image.

Pure: no Pants imports. The bom follows the grammar of Occlum's `tools/copy_bom` (0.24.1+):
`includes`, then `targets`, each with `target` (an absolute image path), `mkdirs`, `createlinks`
(`{src, linkname}`) and `copy` (`{from, files: [{name, hash}]}`).

What the real tool accepts (docs/occlum-contract.md §3.2) decides the form:
- copy_bom checks a file's `hash` before it expands `$VAR`s in its path, so a `${VAR}` source with a
  hash always fails: sources are literal relative paths instead.
- Relative paths resolve against the parent of `--root`. The sources are `../image/...`, so the bom
  works from an Occlum instance made inside the staged folder, next to its `image/`, wherever that
  folder is. Rebuild with (`rm -rf image` because copy_bom expects an empty root):

      cd <staged folder> && occlum new occlum_instance && cd occlum_instance && rm -rf image
      copy_bom -f ../<name>.copy_bom.yaml --root image --include-dir /opt/occlum/etc/template

- `hash` is compared with the SHA-256 in upper-case hex, exactly (a mismatch is exit -7).

copy_bom then recreates the symlinks and empty folders and (autodep) adds the musl libraries the
JDK's ELF files need, as Occlum's Java demos do.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import yaml

# Where the staged image is, seen from an instance made in the staged folder (see above).
SOURCE_ROOT = "../image"
INSTANCE_DIR = "occlum_instance"
KINDS = ("file", "dir", "symlink")
_SHA256 = re.compile(r"[0-9A-F]{64}")


class BomEntry(NamedTuple):
    """One path of the image. path: inside the image ("/usr/lib/spring/app.jar" or without the
    leading "/"); kind: file, dir or symlink; value: the sha256 (hex) of a file, the link target
    of a symlink, "" for a dir."""

    path: str
    kind: str
    value: str = ""


def _image_path(path: str) -> str:
    if not isinstance(path, str) or not path.strip("/"):
        raise ValueError(f"copy_bom: empty image path {path!r}")
    parts = path.strip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"copy_bom: image path {path!r} must be normalized (no '', '.' or '..' parts)")
    if "$" in path:
        # copy_bom shell-expands every path; a literal '$' cannot be written.
        raise ValueError(f"copy_bom: image path {path!r} contains '$', which copy_bom would expand")
    return "/" + "/".join(parts)


def _check(entries: Iterable[tuple[str, str, str]]) -> list[BomEntry]:
    seen: dict[str, BomEntry] = {}
    for raw in entries:
        e = BomEntry(*raw)
        if e.kind not in KINDS:
            raise ValueError(f"copy_bom: {e.path!r}: kind must be one of {', '.join(KINDS)}, not {e.kind!r}")
        path = _image_path(e.path)
        if e.kind == "file" and not (isinstance(e.value, str) and _SHA256.fullmatch(e.value.upper())):
            raise ValueError(f"copy_bom: {path}: a file needs its sha256 as 64 hex digits, got {e.value!r}")
        if e.kind == "symlink" and not e.value:
            raise ValueError(f"copy_bom: {path}: a symlink needs its target")
        if path in seen:
            raise ValueError(f"copy_bom: {path} is listed twice")
        # copy_bom compares the hash with its upper-case hex digest, as a string.
        value = e.value.upper() if e.kind == "file" else (e.value if e.kind == "symlink" else "")
        seen[path] = BomEntry(path, e.kind, value)
    return [seen[p] for p in sorted(seen)]


def bom_data(
    entries: Iterable[tuple[str, str, str]],
    *,
    includes: Sequence[str] = ("base.yaml",),
    source_root: str = SOURCE_ROOT,
) -> dict:
    """The bom as plain data (what `render_copy_bom` dumps)."""
    checked = _check(entries)
    dirs = {e.path for e in checked if e.kind == "dir"}
    by_parent: dict[str, dict[str, list]] = defaultdict(lambda: {"files": [], "links": []})
    for e in checked:
        parent, name = posixpath.split(e.path)
        if e.kind == "file":
            by_parent[parent]["files"].append({"name": name, "hash": e.value})
        elif e.kind == "symlink":
            by_parent[parent]["links"].append({"src": e.value, "linkname": name})
        # Every parent of a file or link exists in the image, also when it has no entry of its own.
        while parent != "/":
            dirs.add(parent)
            parent = posixpath.dirname(parent)

    targets: list[dict] = []
    if dirs:
        # Directories first (also the empty ones), from the image root: `mkdir -p /<dir>`.
        targets.append({"target": "/", "mkdirs": sorted(d.lstrip("/") for d in dirs)})
    root = source_root.rstrip("/")
    for parent in sorted(by_parent):
        group = by_parent[parent]
        if parent == "/" and targets:
            target = targets[0]  # files and links at the image root join the mkdirs target
        else:
            target = {"target": parent}
            targets.append(target)
        if group["links"]:
            target["createlinks"] = group["links"]
        if group["files"]:
            target["copy"] = [{"from": root + (parent if parent != "/" else ""), "files": group["files"]}]
    data: dict = {}
    if includes:
        data["includes"] = list(includes)
    data["targets"] = targets
    return data


def render_copy_bom(
    entries: Iterable[tuple[str, str, str]],
    *,
    includes: Sequence[str] = ("base.yaml",),
    source_root: str = SOURCE_ROOT,
) -> str:
    """A copy_bom YAML file that rebuilds the image made of `entries`.

    entries: (image path, kind, value) tuples, kind "file" (value: sha256 hex), "dir" (value
    ignored) or "symlink" (value: the link target, kept verbatim). Files are grouped by their
    directory into one target each, listed with their `hash`; symlinks become `createlinks`;
    directories (and every parent) become `mkdirs` of a first "/" target. Output is deterministic
    (sorted by path). `includes` defaults to Occlum's `base.yaml` template (the root dirs), as in
    Occlum's Java demo; `source_root` is where the staged image's files are on the host.
    Raises ValueError for an unknown kind, a bad sha256, a duplicate or unnormalized path.
    """
    data = bom_data(entries, includes=includes, source_root=source_root)
    header = (
        "# Occlum copy_bom file for this staged image (generated by the occlum Pants backend).\n"
        "# Its paths are relative to an Occlum instance made in this folder, beside image/. Rebuild with:\n"
        f"#   occlum new {INSTANCE_DIR} && cd {INSTANCE_DIR} && rm -rf image\n"
        "#   copy_bom -f ../<this file> --root image --include-dir /opt/occlum/etc/template\n"
    )
    return header + yaml.dump(
        data, Dumper=_QuotedDumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000
    )


class _QuotedDumper(yaml.SafeDumper):
    """Every string double-quoted: copy_bom reads YAML with serde_yaml, which takes plain `1e5` or
    `0o17` as numbers where PyYAML writes them unquoted as strings; a number where a file name is
    expected makes the whole bom invalid."""


def _quoted(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')


_QuotedDumper.add_representer(str, _quoted)
