"""`<name>.cdx.json`: a CycloneDX 1.7 SBOM of the enclave image, naming its measurement.

It lists what the measured image is made of: the JDK (its supplier and name from the `release`
file's IMPLEMENTOR, the archive's URL and sha256), the service jar and each jar nested in it (a
Maven purl where the jar's own `pom.properties` names its coordinates; otherwise a name and version
from its manifest or file name, each with CycloneDX `evidence.identity` saying how it was found),
the runtime libraries `occlum new` copies in, the Occlum release and toolchain, and every image
file with its sha256. When the enclave was built, the enclave component carries MRENCLAVE, MRSIGNER
and the package's and signed enclave's sha256. The SBOM is not signed: `verify-package`
(occlum.attestation.verify) checks it against the package, down Occlum's chain from the signed
enclave to every image file and into the service jar.

Reproducible: no time stamp, components in a fixed order, and a serial number derived from the
content, so identical inputs give identical bytes.

Written by hand rather than with cyclonedx-python-lib: the releases of that library that know
CycloneDX 1.7 require typing-extensions >= 4.6, which would move the 4.3.0 that Pants 2.17-2.22 pin;
and its defaults (a random serial number, the current time, random bom-refs) would all have to be
overridden for reproducible output. Validity is tested against the official CycloneDX 1.7 schema.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import quote

from occlum.jar.identity import JarIdentity, MavenCoordinates
from occlum.jar.inspect_jar import NestedJar

SPEC_VERSION = "1.7"
SCHEMA_URL = "http://cyclonedx.org/schema/bom-1.7.schema.json"
BACKEND = "occlum-pants-backend"
# What OpenJDK, and so Dragonwell, is licensed under.
OPENJDK_LICENSE = "GPL-2.0-only WITH Classpath-exception-2.0"
_SERIAL_NAMESPACE = uuid.UUID("6f0c5b0e-7c43-5a4e-9a57-0cc1a3a1e0d1")  # this backend's SBOMs


@dataclass(frozen=True)
class JdkFacts:
    target: str
    version: str  # the pin's version ("11.0.16.12.8", or "custom" for a url pin)
    edition: str
    libc: str
    platform: str
    java_version: str  # JAVA_VERSION of the `release` file
    archive_sha256: str
    url: str
    enclave_dir: str
    implementor: Optional[str] = None  # IMPLEMENTOR of the `release` file


@dataclass(frozen=True)
class JarFacts:
    name: str
    sha256: str
    enclave_path: str
    main_class: str
    start_class: Optional[str]
    maven: Optional[MavenCoordinates]
    nested: tuple[NestedJar, ...]


@dataclass(frozen=True)
class ImageFile:
    path: str  # in the enclave: "/usr/lib/jvm/.../bin/java"
    sha256: Optional[str]  # None for a symlink
    link_target: Optional[str] = None


@dataclass(frozen=True)
class EnclaveFacts:
    """The built enclave: the measurement this SBOM names (verify-package checks it against the package)."""

    mrenclave: str
    mrsigner: str
    sgx_mode: str
    package: str  # the package's file name
    package_sha256: str
    signed_enclave_sha256: str  # build/lib/libocclum-libos.signed.so inside the package
    toolchain_fingerprint: str


@dataclass(frozen=True)
class SbomInputs:
    target: str
    backend_version: str
    occlum_release: str
    debuggable: bool
    product_id: int
    version_number: int
    jdk: JdkFacts
    jar: JarFacts
    runtime_libs: tuple[str, ...]  # file names under /lib, copied in by `occlum new`
    files: tuple[ImageFile, ...]
    enclave: Optional[EnclaveFacts]  # None: stage only, not built or measured


def purl(kind: str, namespace: str, name: str, version: str, qualifiers: Optional[dict[str, str]] = None) -> str:
    """A package URL (github.com/package-url/purl-spec): each part percent-encoded."""
    parts = [quote(p, safe="") for p in namespace.split("/") if p] + [quote(name, safe="")]
    text = f"pkg:{kind}/{'/'.join(parts)}@{quote(version, safe='')}"
    if qualifiers:
        text += "?" + "&".join(f"{k}={quote(v, safe=':/')}" for k, v in sorted(qualifiers.items()))
    return text


def maven_purl(m: MavenCoordinates) -> str:
    return purl("maven", m.group, m.artifact, m.version)


def _sha256(hexdigest: str) -> list[dict[str, str]]:
    return [{"alg": "SHA-256", "content": hexdigest}]


def _props(pairs: list[tuple[str, Optional[str]]]) -> list[dict[str, str]]:
    return [{"name": f"occlum:{k}", "value": v} for k, v in pairs if v is not None]


# The JDK component's bom-ref: the verifier finds the JDK's archive hash by it.
JDK_REF = "jdk"


# IMPLEMENTOR (the JDK's `release` file) -> the supplier's name and the distribution's name.
JDK_VENDORS = {
    "Alibaba": ("Alibaba", "dragonwell"),
    "Eclipse Adoptium": ("Eclipse Adoptium", "temurin"),
    "Azul Systems, Inc.": ("Azul Systems", "zulu"),
    "Amazon.com Inc.": ("Amazon", "corretto"),
    "BellSoft": ("BellSoft", "liberica"),
    "Microsoft": ("Microsoft", "msopenjdk"),
    "Oracle Corporation": ("Oracle", "openjdk"),
    "Red Hat, Inc.": ("Red Hat", "openjdk"),
    "SAP SE": ("SAP", "sapmachine"),
}


def jdk_vendor(implementor: Optional[str]) -> tuple[Optional[str], str]:
    """The supplier and the distribution's name that a JDK's IMPLEMENTOR stands for."""
    if implementor is None:
        return None, "openjdk"
    return JDK_VENDORS.get(implementor, (implementor, "openjdk"))


def _slug(text: str) -> str:
    return "-".join("".join(ch if ch.isalnum() else " " for ch in text.lower()).split())


def _jdk(j: JdkFacts) -> dict[str, Any]:
    supplier, name = jdk_vendor(j.implementor)
    # The pin's version names a Dragonwell build; any other JDK is named by its own JAVA_VERSION.
    version = j.version if name == "dragonwell" and j.version != "custom" else j.java_version
    vendor = f"{supplier} " if supplier else ""
    component: dict[str, Any] = {
        "type": "platform",
        "bom-ref": JDK_REF,
        "name": name,
        "version": version,
        "description": f"{vendor}{name} {j.java_version} ({j.libc}, {j.platform}), from {j.target}",
        "licenses": [{"expression": OPENJDK_LICENSE}],
        "hashes": _sha256(j.archive_sha256),
        "purl": purl(
            "generic",
            _slug(supplier or "unknown"),
            name,
            version,
            {"checksum": f"sha256:{j.archive_sha256}", "download_url": j.url},
        ),
        "externalReferences": [{"type": "distribution", "url": j.url, "hashes": _sha256(j.archive_sha256)}],
        "properties": _props(
            [
                ("jdk:java_version", j.java_version),
                ("jdk:implementor", j.implementor),
                ("jdk:edition", j.edition),
                ("jdk:libc", j.libc),
                ("jdk:platform", j.platform),
                ("enclave_path", j.enclave_dir),
            ]
        ),
    }
    if supplier:
        component["supplier"] = {"name": supplier}
    return component


def _evidence(identity: JarIdentity) -> dict[str, Any]:
    """CycloneDX `evidence.identity`: for each part of the name, how it was found and how surely."""
    return {
        "identity": [
            {
                "field": e.field,
                "confidence": e.confidence,
                "concludedValue": e.value,
                "methods": [{"technique": e.technique, "confidence": e.confidence, "value": e.source}],
            }
            for e in identity.evidence
        ]
    }


def _absorbed(m: MavenCoordinates) -> dict[str, Any]:
    return {"type": "library", "group": m.group, "name": m.artifact, "version": m.version, "purl": maven_purl(m)}


def render_nested(n: NestedJar) -> dict[str, Any]:
    """A nested jar's component: the verifier renders it again from the jar in the image to compare."""
    identity = n.identity
    component: dict[str, Any] = {
        "type": "library",
        "bom-ref": f"jar:{n.path}",
        "name": identity.name,
        "hashes": _sha256(n.sha256),
        "evidence": _evidence(identity),
        "properties": _props([("jar:entry", n.path), ("jar:identified_by", identity.method)]),
    }
    if identity.version is not None:
        component["version"] = identity.version
    if identity.maven:
        component.update(group=identity.maven.group, purl=maven_purl(identity.maven))
    if identity.contains:
        # A shaded jar: what it absorbed, each by the pom.properties it brought along.
        component["components"] = [_absorbed(m) for m in identity.contains]
    return component


def _jar(j: JarFacts) -> dict[str, Any]:
    component: dict[str, Any] = {
        "type": "application",
        "bom-ref": "jar",
        "name": j.maven.artifact if j.maven else j.name,
        "hashes": _sha256(j.sha256),
        "properties": _props(
            [
                ("jar:file", j.name),
                ("jar:main_class", j.main_class),
                ("jar:start_class", j.start_class),
                ("enclave_path", j.enclave_path),
            ]
        ),
    }
    if j.maven:
        component.update(group=j.maven.group, version=j.maven.version, purl=maven_purl(j.maven))
    if j.nested:
        component["components"] = [render_nested(n) for n in j.nested]
    return component


def _occlum(release: str, enclave: Optional[EnclaveFacts]) -> dict[str, Any]:
    return {
        "type": "platform",
        "bom-ref": "occlum",
        "name": "occlum",
        "version": release,
        # purl-spec: a github purl's version is the tag, and Occlum tags its releases `v0.31.0`.
        "purl": purl("github", "occlum", "occlum", f"v{release}"),
        "properties": _props([("toolchain_fingerprint", enclave.toolchain_fingerprint if enclave else None)]),
    }


def _file(f: ImageFile) -> dict[str, Any]:
    component: dict[str, Any] = {"type": "file", "bom-ref": f"file:{f.path}", "name": f.path}
    if f.sha256 is not None:
        component["hashes"] = _sha256(f.sha256)
    else:
        component["properties"] = _props([("symlink_target", f.link_target)])
    return component


def _enclave(i: SbomInputs) -> dict[str, Any]:
    e = i.enclave
    pairs: list[tuple[str, Optional[str]]] = [
        ("release", i.occlum_release),
        ("debuggable", str(i.debuggable).lower()),
        ("isv_prod_id", str(i.product_id)),
        ("isv_svn", str(i.version_number)),
        ("config_svn", "0"),
    ]
    if e is None:
        pairs += [
            ("measured", "false"),
            (
                "note",
                "staged only: not built or signed, so there is no MRENCLAVE; the image is what `occlum build` "
                "would measure, with the files `occlum new` adds not listed",
            ),
        ]
    else:
        pairs += [
            ("measured", "true"),
            ("mrenclave", e.mrenclave),
            ("mrsigner", e.mrsigner),
            ("sgx_mode", e.sgx_mode),
            ("package", e.package),
            ("package_sha256", e.package_sha256),
            ("signed_enclave_sha256", e.signed_enclave_sha256),
        ]
    component: dict[str, Any] = {
        "type": "application",
        "bom-ref": "enclave",
        "name": i.target,
        "description": "Occlum SGX enclave image",
        "properties": _props(pairs),
    }
    if e is not None:
        component["hashes"] = _sha256(e.package_sha256)
    return component


def render_sbom(i: SbomInputs) -> dict[str, Any]:
    by_path = {f.path: f for f in i.files}
    libs = []
    for lib in i.runtime_libs:
        f = by_path.get(f"/lib/{lib}")
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": f"runtime-lib:{lib}",
            "name": lib,
            "properties": _props([("enclave_path", f"/lib/{lib}"), ("source", "copied from the Occlum install")]),
        }
        if f is not None and f.sha256:
            component["hashes"] = _sha256(f.sha256)
        libs.append(component)
    files = [_file(f) for f in sorted(i.files, key=lambda f: f.path)]
    doc: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": BACKEND, "version": i.backend_version}]},
            "component": _enclave(i),
        },
        "components": [_jdk(i.jdk), _jar(i.jar), _occlum(i.occlum_release, i.enclave), *libs, *files],
        "dependencies": [
            {"ref": "enclave", "dependsOn": [JDK_REF, "jar", "occlum", *(c["bom-ref"] for c in libs)]},
            {"ref": "jar", "dependsOn": [f"jar:{n.path}" for n in i.jar.nested]},
        ],
    }
    # Derived from the content: the same inputs give the same serial number, other inputs another.
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    doc["serialNumber"] = f"urn:uuid:{uuid.uuid5(_SERIAL_NAMESPACE, digest)}"
    return doc


def components_sha256(doc: dict[str, Any]) -> str:
    """The sha256 of the SBOM's `components` (canonical JSON), recorded in `<name>.measurements.json` so
    that a changed JDK, jar, library or file hash in the SBOM no longer matches its build."""
    components = doc.get("components", [])
    canonical = json.dumps(components, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def enclave_property(doc: dict[str, Any], name: str) -> Optional[str]:
    """A property of the SBOM's enclave component (`occlum:<name>`), as the verifier reads it."""
    for prop in doc.get("metadata", {}).get("component", {}).get("properties", []):
        if isinstance(prop, dict) and prop.get("name") == f"occlum:{name}":
            value = prop.get("value")
            return value if isinstance(value, str) else None
    return None
