"""The JSON records the backend writes beside an image, as versioned, frozen values.

`occlum-image.json` (the staged instance's summary) and `<name>.measurements.json` (the built
enclave) are read by people and by CI scripts, so their shape is a contract: each record carries a
`format_version`, and this module is the only place that turns them into JSON. Pure: no Pants
imports, so the records can be read and tested anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Union


def dump_json(doc: dict[str, Any]) -> bytes:
    """The one serialisation every record uses: sorted keys, two-space indent, final newline."""
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class JdkRecord:
    target: str
    dragonwell: str  # the pin, as `DragonwellPin.describe()` says it
    java_version: str
    libc: str
    interpreter: Optional[str]  # bin/java's PT_INTERP
    sha256: str  # of the archive
    enclave_dir: str

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "dragonwell": self.dragonwell,
            "java_version": self.java_version,
            "libc": self.libc,
            "interpreter": self.interpreter,
            "sha256": self.sha256,
            "enclave_dir": self.enclave_dir,
        }


@dataclass(frozen=True)
class JarRecord:
    source: str
    enclave_path: str
    main_class: str
    class_file_major: Optional[int]  # None: a jar with no classes outside META-INF/versions

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "enclave_path": self.enclave_path,
            "main_class": self.main_class,
            "class_file_major": self.class_file_major,
        }


@dataclass(frozen=True)
class BudgetLine:
    """One part of the JVM's memory, as the sizing model counted it."""

    component: str
    size: str
    source: str


@dataclass(frozen=True)
class LimitLine:
    """One Occlum limit written to Occlum.json, and how it was decided."""

    knob: str
    value: Union[str, int]  # a size string, or a count for max_num_of_threads
    how: str


@dataclass(frozen=True)
class MemoryRecord:
    jvm_budget: tuple[BudgetLine, ...]
    limits: tuple[LimitLine, ...]
    enclave_memory_estimate: str
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "jvm_budget": [{"component": b.component, "size": b.size, "from": b.source} for b in self.jvm_budget],
            "limits": {line.knob: {"value": line.value, "how": line.how} for line in self.limits},
            "enclave_memory_estimate": self.enclave_memory_estimate,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ImageSummaryV1:
    """`occlum-image.json`: what a staged image holds and how `occlum run` starts it."""

    FORMAT_VERSION = 1

    target: str
    occlum_release: str
    jdk: JdkRecord
    jar: JarRecord
    command: tuple[str, ...]  # what follows `occlum run`
    memory: MemoryRecord
    debuggable: bool
    image_files: int
    # What the toolchain puts into the image later (`occlum new` + `[occlum].runtime_libs`), so a
    # staged image/ is not mistaken for the whole image.
    added_by_occlum_new: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.FORMAT_VERSION,
            "added_by_occlum_new": {
                "paths": list(self.added_by_occlum_new),
                "note": "copied from the Occlum install by `occlum new` (with Occlum's own skeleton: "
                "/bin, /etc, /lib/ld-musl...); not in this staged image/",
            },
            "target": self.target,
            "occlum_release": self.occlum_release,
            "jdk": self.jdk.to_json(),
            "jar": self.jar.to_json(),
            "command": list(self.command),
            "memory": self.memory.to_json(),
            "debuggable": self.debuggable,
            "image_files": self.image_files,
        }

    def serialize(self) -> bytes:
        return dump_json(self.to_json())


@dataclass(frozen=True)
class EnclaveMeasurementsV1:
    """`<name>.measurements.json`: the built enclave's identity, beside its package."""

    FORMAT_VERSION = 1

    target: str
    mrenclave: str
    mrsigner: str
    occlum_release: str
    occlum_toolchain_fingerprint: str
    sgx_mode: str
    debuggable: bool
    product_id: int
    version_number: int
    package: str  # the package's file name
    image: ImageSummaryV1
    package_sha256: str = ""
    signed_enclave_sha256: str = ""  # build/lib/libocclum-libos.signed.so inside the package
    sbom_components_sha256: str = ""  # attestation.sbom.components_sha256 of `<name>.cdx.json`

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.FORMAT_VERSION,
            "target": self.target,
            "mrenclave": self.mrenclave,
            "mrsigner": self.mrsigner,
            "occlum_release": self.occlum_release,
            "occlum_toolchain_fingerprint": self.occlum_toolchain_fingerprint,
            "sgx_mode": self.sgx_mode,
            "debuggable": self.debuggable,
            "product_id": self.product_id,
            "version_number": self.version_number,
            "package": self.package,
            "package_sha256": self.package_sha256,
            "signed_enclave_sha256": self.signed_enclave_sha256,
            "sbom_components_sha256": self.sbom_components_sha256,
            "image": self.image.to_json(),
        }

    def serialize(self) -> bytes:
        return dump_json(self.to_json())
