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
from occlum.attestation.sefs_image import (
    MAX_SYMLINK_BYTES,
    TYPE_DIR,
    TYPE_SYMLINK,
    ImageEntry,
    Pending,
    SefsError,
    check_contents,
    kinds_by_file,
    walk_directories,
)
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


@dataclass(frozen=True)
class SysConfig:
    layers: dict[str, Layer]  # IMAGE_ROOT / INITFS_ROOT -> its MAC
    other_mounts: tuple[tuple[str, str], ...]  # (target, type) of the app's mounts besides its root
    untrusted_env: tuple[str, ...]  # host variables the app receives at run time


def read_sys_config(config: bytes) -> SysConfig:
    """From `.Occlum_sys.json`: the MAC of each SEFS image mounted from the package, checked to be the
    layers of the stage's root file system; the app stage's other mounts; its untrusted env."""
    doc = Doc(os.path.basename(CONFIG), parse_json(config, os.path.basename(CONFIG)))
    found: dict[str, Layer] = {}
    others: list[tuple[str, str]] = []

    def visit_mounts(mounts: Doc, under_root: bool, stage: int) -> None:
        for mount in mounts.items():
            target = (mount.get("target").text() or "").rstrip("/") or "/"
            kind = mount.get("type").text() or ""
            options = mount.get("options")
            layers = options.get("layers").items() if options.value is not None else []
            if layers:
                visit_mounts(
                    Doc(mount.name, [layer.value for layer in layers], f"{options.path}.layers"), target == "/", stage
                )
            elif stage == 1 and not under_root:
                others.append((target, kind))
            source = (mount.get("source").text() or "").rstrip("/")
            if kind == "sefs" and source in (f"./{IMAGE_ROOT}", f"./{INITFS_ROOT}"):
                text = options.get("MAC").text()
                mac = parse_mac_text(text) if text is not None else None
                if mac is None:
                    raise _Failed(f"{doc.name}: {options.path}.MAC is {text!r}, not a MAC")
                if source[2:] in found:
                    raise _Failed(f"{doc.name}: {source} is mounted twice")
                if not under_root or target != "/":
                    raise _Failed(f"{doc.name}: {source} is not a layer of the root file system (`/`)")
                found[source[2:]] = Layer(source[2:], mac)

    apps = doc.get("app").items()
    for stage, app in enumerate(apps):
        visit_mounts(app.get("mount"), False, stage)
    for root in (IMAGE_ROOT, INITFS_ROOT):
        if root not in found:
            raise _Failed(f"{doc.name} mounts no SEFS image from ./{root} with a MAC as its root")
    untrusted = tuple(v.text() or "" for v in doc.get("env").get("untrusted").items())
    return SysConfig(found, tuple(others), untrusted)


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


class _KeptBudget:
    """Directories, symlinks and initfs files are kept whole while a scan reads them: in all, bounded."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def reader(self, keep_up_to: int) -> Callable[[IO[bytes]], Any]:
        def read(f: IO[bytes]) -> Any:
            try:
                result = read_protected(f, keep_up_to)
            except ProtectedFileError as e:
                return e  # a failed link, reported by the check that needs the file
            self.left -= result.size if result.data is not None else 0
            if self.left < 0:
                raise Unusable("its image directories and symlinks add up to more than the verifier keeps")
            return result

        return read


def _files_of(contents: PackageContents, root: str) -> dict[str, ProtectedFile]:
    prefix = f"{root}/"
    files: dict[str, ProtectedFile] = {}
    for rest, read in contents.read.items():
        if rest.startswith(prefix) and "/" not in rest[len(prefix) :]:
            if isinstance(read, ProtectedFileError):
                raise _Failed(f"{rest}: {read}")
            files[rest[len(prefix) :]] = read
    return files


def _scan_image_files(package: str, wanted: dict[str, dict[str, int]]) -> PackageContents:
    """Read the named protected files under each root (name -> bytes to keep); nothing else."""
    budget = _KeptBudget(MAX_KEPT_CONTENT)

    def readers(rest: str) -> Optional[Callable[[IO[bytes]], Any]]:
        root, _, name = rest.rpartition("/")
        keep = wanted.get(root, {}).get(name)
        return None if keep is None else budget.reader(keep)

    return read_package(package, readers)


def _walk(contents: PackageContents, root: str, metadata: ProtectedFile) -> list[Pending]:
    try:
        return walk_directories(metadata.data or b"", _files_of(contents, root))
    except SefsError as e:
        raise _Failed(f"{root}: {e}") from None


def _contents(contents: PackageContents, root: str, pending: list[Pending]) -> list[ImageEntry]:
    try:
        return check_contents(pending, _files_of(contents, root))
    except SefsError as e:
        raise _Failed(f"{root}: {e}") from None


def _image_is_encrypted(initfs: list[ImageEntry], scan: PackageContents) -> bool:
    """What the initfs's /etc/image_config.json says (`occlum build` writes it; the initfs is checked)."""
    entry = next((e for e in initfs if e.path == "/etc/image_config.json" and e.kind == "file"), None)
    read = scan.read.get(f"{INITFS_ROOT}/{entry.file_name}") if entry else None
    if not isinstance(read, ProtectedFile) or read.data is None:
        return False
    try:
        cfg = Doc("image_config.json", parse_json(read.data, "the initfs's /etc/image_config.json"))
        return cfg.get("image_type").value == "encrypted" or cfg.get("key").value is not None
    except Unusable:
        return False


def component_property(component: Doc, name: str) -> Optional[str]:
    """The `occlum:<name>` property of an SBOM component."""
    for p in component.get("properties").items():
        if p.get("name").text() == f"occlum:{name}":
            return p.get("value").text()
    return None


def component_sha256(component: Doc) -> Optional[str]:
    """The SHA-256 an SBOM component records."""
    return next(
        (h.get("content").text() for h in component.get("hashes").items() if h.get("alg").text() == "SHA-256"), None
    )


def _sbom_files(sbom: Doc) -> dict[str, tuple[str, Optional[str]]]:
    """path -> ("file", sha256) or ("symlink", target), from the SBOM's file components."""
    out: dict[str, tuple[str, Optional[str]]] = {}
    for c in sbom.get("components").items():
        if c.get("type").text() != "file":
            continue
        name = c.get("name").text() or ""
        sha = component_sha256(c)
        out[name] = ("file", sha) if sha is not None else ("symlink", component_property(c, "symlink_target"))
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


MAX_INITFS_FILE = 16 * 1024 * 1024  # the initfs holds Occlum's init and its libc: a few MB
HOST_CONTROLLED_ENV = (
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
)


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
        sys_config = read_sys_config(config.data or b"")
    except (_Failed, Unusable) as e:
        report.fail(str(e), LINK_CONFIG)
        return
    layers = sys_config.layers
    report.link(LINK_CONFIG)
    report.ok(f"{CONFIG} mounts the image (MAC {mac_text(layers[IMAGE_ROOT].mac or b'')}) and the initfs as `/`")
    upper = sorted(rest for rest in contents.members if rest.startswith("run/mount/__ROOT/"))
    if upper:
        # The root's writable layer starts empty; anything shipped in it would cover the image's files.
        report.fail(f"the package ships files in the root's writable layer (run/mount/__ROOT): {upper[0]}", LINK_CONFIG)

    # The initfs is never encrypted; it says whether the image is.
    try:
        init_md = _metadata(contents, INITFS_ROOT, layers[INITFS_ROOT].mac or b"")
        if init_md is None:
            raise _Failed(f"{INITFS_ROOT}/metadata is not integrity-only; `occlum build` never encrypts the initfs")
    except _Failed as e:
        report.fail(str(e), LINK_INITFS)
        return
    image_read = contents.read.get(f"{IMAGE_ROOT}/metadata")
    image_md: Optional[ProtectedFile] = None
    try:
        image_md = _metadata(contents, IMAGE_ROOT, layers[IMAGE_ROOT].mac or b"")
    except _Failed as e:
        report.fail(str(e), LINK_IMAGE)
    # Scan 2: the directories of both images, and every initfs file (small): only what their metadata names.
    wanted: dict[str, dict[str, int]] = {
        INITFS_ROOT: {name: MAX_INITFS_FILE for name in kinds_by_file(init_md.data or b"")}
    }
    if image_md is not None:
        kinds = kinds_by_file(image_md.data or b"")
        wanted[IMAGE_ROOT] = {name: MAX_KEPT_CONTENT for name, kind in kinds.items() if kind == TYPE_DIR}
    second = _scan_image_files(package, wanted)
    try:
        initfs = _contents(second, INITFS_ROOT, _walk(second, INITFS_ROOT, init_md))
    except _Failed as e:
        report.fail(str(e), LINK_INITFS)
        return
    report.link(LINK_INITFS)
    report.ok(f"{INITFS_ROOT}: {len(initfs)} entries, each file's MAC the one its inode records")
    if image_md is None:
        if isinstance(image_read, ProtectedFile) and not image_read.integrity_only:
            if _image_is_encrypted(initfs, second):
                report.not_checked.append(
                    f"{LINK_IMAGE}: the image is encrypted with a key, which is not in the package"
                )
            else:
                report.fail(
                    f"{IMAGE_ROOT}/metadata is marked as encrypted, but the initfs's image_config.json says the image "
                    "is integrity-only: the mark is in the file's unauthenticated header",
                    LINK_IMAGE,
                )
        return
    # Scan 3: the image's files and symlinks that its directories reach, and nothing else.
    try:
        pending = _walk(second, IMAGE_ROOT, image_md)
    except _Failed as e:
        report.fail(str(e), LINK_IMAGE)
        return
    reachable = {
        p.node.file_name: (MAX_SYMLINK_BYTES if p.node.kind == TYPE_SYMLINK else 0)
        for p in pending
        if p.node.kind != TYPE_DIR
    }
    third = _scan_image_files(package, {IMAGE_ROOT: reachable})
    try:
        image = _contents(third, IMAGE_ROOT, pending)
    except _Failed as e:
        report.fail(str(e), LINK_IMAGE)
        return
    report.link(LINK_IMAGE)
    files = sum(1 for e in image if e.kind == "file")
    report.ok(f"{IMAGE_ROOT}: {len(image)} entries ({files} files), each file's MAC the one its inode records")
    _check_mounts(report, sys_config, image)
    problems = compare_files(image, sbom)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        report.fail(f"the SBOM's files are not the image's: {shown}", LINK_SBOM_FILES)
    else:
        report.link(LINK_SBOM_FILES)
        report.ok(f"the SBOM lists exactly the image's {sum(1 for e in image if e.kind != 'dir')} files and symlinks")
    _check_jar(report, package, image, sbom)


def _check_mounts(report: Any, config: SysConfig, image: list[ImageEntry]) -> None:
    """A mount over a folder of the image hides the image's files there from the app: what runs is not
    what the SBOM lists. The host's variables are named: they reach the app unmeasured."""
    paths = [e.path for e in image if e.kind != "dir"]
    for target, kind in config.other_mounts:
        covered = [p for p in paths if p == target or p.startswith(target.rstrip("/") + "/")]
        if covered:
            report.fail(
                f"{CONFIG} mounts a {kind} at {target}, over {len(covered)} file(s) of the image (e.g. {covered[0]}): "
                "the app would see that mount's files, not the image's",
                LINK_CONFIG,
            )
    if config.untrusted_env:
        risky = [v for v in config.untrusted_env if v in HOST_CONTROLLED_ENV]
        report.warn(
            f"the host sets these variables at run time (env.untrusted): {', '.join(config.untrusted_env)}"
            + (f"; {', '.join(risky)} can change the code the JVM runs" if risky else "")
        )


def _check_jar(report: Any, package: str, image: list[ImageEntry], sbom: Doc) -> None:
    jar = _sbom_jar(sbom)
    path = component_property(jar, "enclave_path") if jar is not None else None
    entry = next((e for e in image if e.path == path and e.kind == "file"), None)
    if jar is None or entry is None:
        report.fail(f"the SBOM's service jar ({path}) is not a file of the image", LINK_SBOM_JAR)
        return
    if component_sha256(jar) != entry.sha256:
        report.fail(
            f"the SBOM's jar sha256 is {component_sha256(jar)}, the image's {path} has {entry.sha256}", LINK_SBOM_JAR
        )
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
