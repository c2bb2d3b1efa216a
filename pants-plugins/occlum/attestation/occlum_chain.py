"""Occlum's chain from the signed enclave down to the image's files, and from those files to the SBOM.

What Occlum 0.31.0's build binds, and what its LibOS checks at run time (tools/occlum_build.mk,
tools/gen_internal_conf, src/libos/src/config.rs and fs/sefs/sgx_storage.rs, and sefs):

1. `occlum build` writes the MAC of `build/.Occlum_sys.json.protected`, as text ("xx-xx-...", 47
   characters), into the LibOS's `.builtin_config` section before it is signed, so MRENCLAVE covers
   it. The LibOS reads those 47 bytes and refuses a config file with another MAC.
2. That protected file is `.Occlum_sys.json`: among its mounts, the image (`./build/mount/__ROOT`)
   and the initfs (`./build/initfs/__ROOT`), each with the MAC of its SEFS image (`options.MAC`).
3. Each image's MAC is the MAC of its `metadata` file, which records each inode with the MAC of
   the inode's own file; so every file's bytes follow from the MAC in the config.

The verifier checks each of these links on the package's bytes (occlum.attestation.protected_file,
occlum.attestation.sefs_image), then that the image's files are the SBOM's files, and that the
service jar in the image holds the nested jars the SBOM lists, with the identities it gives them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Optional

from occlum.attestation.elf_sections import ElfError, section_bytes, sections
from occlum.attestation.package_reader import PackageContents, read_package
from occlum.attestation.protected_file import (
    MAC_TEXT_LENGTH,
    ProtectedFile,
    ProtectedFileError,
    mac_text,
    parse_mac_text,
    read_protected,
)
from occlum.attestation.sbom import maven_purl, render_nested
from occlum.attestation.sefs_image import TYPE_DIR, TYPE_SYMLINK, ImageEntry, SefsError, kinds_by_file, read_image
from occlum.attestation.untrusted import Doc, Unusable, parse_json
from occlum.jar.inspect_jar import JarError, nested_jars

CONFIG = "build/.Occlum_sys.json.protected"
IMAGE_ROOT = "build/mount/__ROOT"
INITFS_ROOT = "build/initfs/__ROOT"
MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_METADATA_BYTES = 256 * 1024 * 1024  # 128 bytes per inode
MAX_KEPT_CONTENT = 64 * 1024 * 1024  # a directory's entries or a symlink's target
MAX_JAR_BYTES = 1024 * 1024 * 1024

LINK_BUILTIN = "the signed enclave's .builtin_config -> the MAC of build/.Occlum_sys.json.protected"
LINK_CONFIG = "build/.Occlum_sys.json.protected -> the MACs of the image and the initfs in it"
LINK_IMAGE = "the image's MAC -> build/mount/__ROOT/metadata -> every file of the image"
LINK_INITFS = "the initfs's MAC -> build/initfs/__ROOT/metadata -> every file of the initfs"
LINK_SBOM_FILES = "the image's files -> the SBOM's file components"
LINK_SBOM_JAR = "the service jar in the image -> the SBOM's jar and nested jar components"


class _Failed(Exception):
    """A link does not hold; the message names what differs."""


def _protected(keep_up_to: int) -> Callable[[IO[bytes]], Any]:
    def read(f: IO[bytes]) -> Any:
        try:
            return read_protected(f, keep_up_to)
        except ProtectedFileError as e:
            return e  # a failed link, not an unreadable package: reported by the check that needs it

    return read


def first_scan_readers(rest: str) -> Optional[Callable[[IO[bytes]], Any]]:
    """What the first scan of the package reads for the chain (the rest is only hashed)."""
    if rest == CONFIG:
        return _protected(MAX_CONFIG_BYTES)
    if rest in (f"{IMAGE_ROOT}/metadata", f"{INITFS_ROOT}/metadata"):
        return _protected(MAX_METADATA_BYTES)
    return None


@dataclass(frozen=True)
class Layer:
    root: str  # IMAGE_ROOT or INITFS_ROOT
    mac: Optional[bytes]


def builtin_config_mac(signed_enclave: bytes) -> bytes:
    try:
        found = sections(signed_enclave).get(".builtin_config")
    except ElfError as e:
        raise _Failed(f"the signed enclave is not an ELF file whose sections can be read: {e}") from None
    if found is None:
        raise _Failed("the signed enclave has no .builtin_config section, so no config MAC is built into it")
    raw = section_bytes(signed_enclave, found)[:MAC_TEXT_LENGTH]
    mac = parse_mac_text(raw.decode("ascii", "replace"))
    if mac is None:
        raise _Failed(f"the signed enclave's .builtin_config holds {raw!r}, not a MAC (16 hex pairs joined by -)")
    return mac


def _config_file(contents: PackageContents, mac: bytes) -> ProtectedFile:
    read = contents.read.get(CONFIG)
    if read is None:
        raise _Failed(f"the package has no {CONFIG}")
    if isinstance(read, ProtectedFileError):
        raise _Failed(f"{CONFIG}: {read}")
    if not read.integrity_only:
        raise _Failed(f"{CONFIG} is not an integrity-only protected file, as occlum-protect-integrity writes")
    if read.name != os.path.basename(CONFIG):
        raise _Failed(f"{CONFIG} was protected under another name ({read.name!r}); the LibOS would not open it")
    if read.mac != mac:
        raise _Failed(
            f"the MAC of {CONFIG} is {mac_text(read.mac)}, "
            f"but the signed enclave's .builtin_config says {mac_text(mac)}"
        )
    if read.data is None:
        raise _Failed(f"{CONFIG} holds {read.size} bytes, more than the {MAX_CONFIG_BYTES} read here")
    return read


def image_macs(config: bytes) -> dict[str, Layer]:
    """The MAC of each SEFS layer that `.Occlum_sys.json` mounts from the package, by its source."""
    doc = Doc(os.path.basename(CONFIG), parse_json(config, os.path.basename(CONFIG)))
    found: dict[str, Layer] = {}

    def visit_mounts(mounts: Doc) -> None:
        for mount in mounts.items():
            options = mount.get("options")
            if options.value is None:
                continue
            for layer in options.get("layers").items():
                visit_mounts(Doc(layer.name, [layer.value], layer.path))
            source = (mount.get("source").text() or "").rstrip("/")
            if mount.get("type").text() == "sefs" and source in (f"./{IMAGE_ROOT}", f"./{INITFS_ROOT}"):
                text = options.get("MAC").text()
                mac = parse_mac_text(text) if text is not None else None
                if mac is None:
                    raise _Failed(f"{doc.name}: {options.path}.MAC is {text!r}, not a MAC")
                if source[2:] in found:
                    raise _Failed(f"{doc.name}: {source} is mounted twice")
                found[source[2:]] = Layer(source[2:], mac)

    for app in doc.get("app").items():
        visit_mounts(app.get("mount"))
    for root in (IMAGE_ROOT, INITFS_ROOT):
        if root not in found:
            raise _Failed(f"{doc.name} mounts no SEFS image from ./{root} with a MAC")
    return found


def _metadata(contents: PackageContents, root: str, mac: bytes) -> Optional[ProtectedFile]:
    """The image's metadata file, checked against the MAC the config gives; None if it is encrypted."""
    read = contents.read.get(f"{root}/metadata")
    if read is None:
        raise _Failed(f"the package has no {root}/metadata")
    if isinstance(read, ProtectedFileError):
        raise _Failed(f"{root}/metadata: {read}")
    if not read.integrity_only:
        return None
    if read.mac != mac:
        raise _Failed(f"the MAC of {root}/metadata is {mac_text(read.mac)}, but the config says {mac_text(mac)}")
    if read.data is None:
        raise _Failed(f"{root}/metadata holds {read.size} bytes, more than the {MAX_METADATA_BYTES} read here")
    return read


def _second_scan(package: str, metadata: dict[str, ProtectedFile]) -> PackageContents:
    """Read every inode file of the images whose metadata was checked; keep directories and symlinks."""
    kinds = {root: kinds_by_file(md.data or b"") for root, md in metadata.items()}

    def readers(rest: str) -> Optional[Callable[[IO[bytes]], Any]]:
        root, _, name = rest.rpartition("/")
        if root not in kinds or name == "metadata":
            return None
        kept = MAX_KEPT_CONTENT if kinds[root].get(name) in (TYPE_DIR, TYPE_SYMLINK) else 0
        return _protected(kept)

    return read_package(package, readers)


def _image_files(contents: PackageContents, root: str, metadata: ProtectedFile) -> list[ImageEntry]:
    prefix = f"{root}/"
    files: dict[str, ProtectedFile] = {}
    for rest, read in contents.read.items():
        if rest.startswith(prefix) and "/" not in rest[len(prefix) :]:
            if isinstance(read, ProtectedFileError):
                raise _Failed(f"{rest}: {read}")
            files[rest[len(prefix) :]] = read
    try:
        return read_image(metadata.data or b"", files)
    except SefsError as e:
        raise _Failed(f"{root}: {e}") from None


def _sbom_files(sbom: Doc) -> dict[str, tuple[str, Optional[str]]]:
    """path -> ("file", sha256) or ("symlink", target), from the SBOM's file components."""
    out: dict[str, tuple[str, Optional[str]]] = {}
    for c in sbom.get("components").items():
        if c.get("type").text() != "file":
            continue
        name = c.get("name").text() or ""
        sha = next((h.get("content").text() for h in c.get("hashes").items() if h.get("alg").text() == "SHA-256"), None)
        target = next(
            (
                p.get("value").text()
                for p in c.get("properties").items()
                if p.get("name").text() == "occlum:symlink_target"
            ),
            None,
        )
        out[name] = ("file", sha) if sha is not None else ("symlink", target)
    return out


def compare_files(image: list[ImageEntry], sbom: Doc) -> list[str]:
    """What differs between the image's files and symlinks and the SBOM's file components."""
    in_image = {
        e.path: ("file", e.sha256) if e.kind == "file" else ("symlink", e.target) for e in image if e.kind != "dir"
    }
    in_sbom = _sbom_files(sbom)
    problems = []
    for path in sorted(in_image.keys() - in_sbom.keys()):
        problems.append(f"{path} is in the image but not in the SBOM")
    for path in sorted(in_sbom.keys() - in_image.keys()):
        problems.append(f"{path} is in the SBOM but not in the image")
    for path in sorted(in_image.keys() & in_sbom.keys()):
        if in_image[path] != in_sbom[path]:
            kind, value = in_image[path]
            problems.append(
                f"{path}: the image holds a {kind} {value}, the SBOM says {in_sbom[path][0]} {in_sbom[path][1]}"
            )
    return problems


def _sbom_jar(sbom: Doc) -> Optional[Doc]:
    return next((c for c in sbom.get("components").items() if c.get("bom-ref").text() == "jar"), None)


def _property(component: Doc, name: str) -> Optional[str]:
    for p in component.get("properties").items():
        if p.get("name").text() == f"occlum:{name}":
            return p.get("value").text()
    return None


def _sha256_of(component: Doc) -> Optional[str]:
    return next(
        (h.get("content").text() for h in component.get("hashes").items() if h.get("alg").text() == "SHA-256"), None
    )


def compare_jar(jar_bytes: bytes, jar: Doc) -> list[str]:
    """What differs between the jar's own bytes and what the SBOM says of it and its nested jars."""
    try:
        own, nested = nested_jars(jar_bytes, "the service jar")
    except JarError as e:
        return [str(e)]
    problems = []
    expected_purl = maven_purl(own) if own else None
    if jar.get("purl").text() != expected_purl:
        problems.append(f"the jar's purl is {jar.get('purl').text()}, its pom.properties gives {expected_purl}")
    listed = {c.get("bom-ref").text() or "": c for c in jar.get("components").items()}
    actual = {f"jar:{n.path}": render_nested(n) for n in nested}
    for ref in sorted(actual.keys() - listed.keys()):
        problems.append(f"nested jar {ref[4:]} is in the jar but not in the SBOM")
    for ref in sorted(listed.keys() - actual.keys()):
        problems.append(f"nested jar {ref[4:]} is in the SBOM but not in the jar")
    for ref in sorted(actual.keys() & listed.keys()):
        if listed[ref].value != actual[ref]:
            fields = [
                k for k in set(actual[ref]) | set(listed[ref].obj()) if actual[ref].get(k) != listed[ref].obj().get(k)
            ]
            problems.append(f"nested jar {ref[4:]}: the SBOM's {', '.join(sorted(fields))} differ from the jar's own")
    return problems


def check_chain(report: Any, package: str, contents: PackageContents, sbom: Doc, signed: Optional[bytes]) -> None:
    """Each link from the signed enclave to the SBOM, as far as each holds; the report says which."""
    if signed is None:
        report.not_checked.append(f"{LINK_BUILTIN}, and every link below it: there is no signed enclave")
        return
    try:
        conf_mac = builtin_config_mac(signed)
        config = _config_file(contents, conf_mac)
    except _Failed as e:
        report.fail(str(e), LINK_BUILTIN)
        return
    report.link(LINK_BUILTIN)
    report.ok(f"{CONFIG}: its MAC {mac_text(conf_mac)} is the one built into the signed enclave")
    try:
        layers = image_macs(config.data or b"")
    except (_Failed, Unusable) as e:
        report.fail(str(e), LINK_CONFIG)
        return
    report.link(LINK_CONFIG)
    report.ok(f"{CONFIG} gives the image MAC {mac_text(layers[IMAGE_ROOT].mac or b'')} and the initfs MAC")
    metadata: dict[str, ProtectedFile] = {}
    for root, link in ((IMAGE_ROOT, LINK_IMAGE), (INITFS_ROOT, LINK_INITFS)):
        try:
            md = _metadata(contents, root, layers[root].mac or b"")
        except _Failed as e:
            report.fail(str(e), link)
            continue
        if md is None:
            report.not_checked.append(f"{link}: the image is encrypted with a key, which is not in the package")
        else:
            metadata[root] = md
    if not metadata:
        return
    second = _second_scan(package, metadata)
    image: Optional[list[ImageEntry]] = None
    for root, link in ((IMAGE_ROOT, LINK_IMAGE), (INITFS_ROOT, LINK_INITFS)):
        if root not in metadata:
            continue
        try:
            entries = _image_files(second, root, metadata[root])
        except _Failed as e:
            report.fail(str(e), link)
            continue
        report.link(link)
        files = sum(1 for e in entries if e.kind == "file")
        report.ok(f"{root}: {len(entries)} entries ({files} files), each file's MAC the one its inode records")
        if root == IMAGE_ROOT:
            image = entries
    if image is None:
        return
    problems = compare_files(image, sbom)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        report.fail(f"the SBOM's files are not the image's: {shown}", LINK_SBOM_FILES)
    else:
        report.link(LINK_SBOM_FILES)
        report.ok(f"the SBOM lists exactly the image's {sum(1 for e in image if e.kind != 'dir')} files and symlinks")
    _check_jar(report, package, image, sbom)


def _check_jar(report: Any, package: str, image: list[ImageEntry], sbom: Doc) -> None:
    jar = _sbom_jar(sbom)
    path = _property(jar, "enclave_path") if jar is not None else None
    entry = next((e for e in image if e.path == path and e.kind == "file"), None)
    if jar is None or entry is None:
        report.fail(f"the SBOM's service jar ({path}) is not a file of the image", LINK_SBOM_JAR)
        return
    if _sha256_of(jar) != entry.sha256:
        report.fail(f"the SBOM's jar sha256 is {_sha256_of(jar)}, the image's {path} has {entry.sha256}", LINK_SBOM_JAR)
        return
    # A third scan reads the jar's bytes: which inode file holds it is known only now.
    name = entry.file_name
    third = read_package(package, lambda rest: _protected(MAX_JAR_BYTES) if rest == f"{IMAGE_ROOT}/{name}" else None)
    read = third.read.get(f"{IMAGE_ROOT}/{name}")
    if not isinstance(read, ProtectedFile) or read.data is None or read.sha256 != entry.sha256:
        report.fail(f"the image's {path} could not be read back as the bytes first checked", LINK_SBOM_JAR)
        return
    problems = compare_jar(read.data, jar)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        report.fail(f"the SBOM's jar components are not the jar's: {shown}", LINK_SBOM_JAR)
        return
    report.link(LINK_SBOM_JAR)
    count = len(jar.get("components").items())
    report.ok(f"{path}: its purl and its {count} nested jars (hash, name, version, purl) are what the SBOM says")
