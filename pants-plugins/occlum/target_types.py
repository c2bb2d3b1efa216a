"""The `dragonwell_jdk` and `occlum_java_image` targets and their fields."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

from pants.core.goals.package import OutputPathField
from pants.engine.addresses import Address, UnparsedAddressInputs
from pants.engine.target import (
    COMMON_TARGET_FIELDS,
    AsyncFieldMixin,
    BoolField,
    Dependencies,
    DictStringToStringField,
    Field,
    FieldSet,
    IntField,
    InvalidFieldException,
    OptionalSingleSourceField,
    StringField,
    StringSequenceField,
    Target,
)
from pants.util.frozendict import FrozenDict
from pants.util.strutil import help_text, softwrap

from occlum import image_paths
from occlum.config.model import Mount, MountError, as_written
from occlum.config.sizes import SizeError, parse_size
from occlum.jdk.urls import UrlError, archive_file_name, redacted
from occlum.pants_compat import EnvironmentField
from occlum.subsystems.dragonwell import DEFAULT_VERSION

# ---------------------------------------------------------------------------------------------
# dragonwell_jdk
# ---------------------------------------------------------------------------------------------


class DragonwellVersionField(StringField):
    alias = "version"
    default = DEFAULT_VERSION  # the build Occlum's own Java installer uses
    help = help_text(
        """
        The Dragonwell version, e.g. `11.0.16.12.8`, looked up in `[dragonwell].known_versions`
        together with `edition` and `libc`. The default is the build Occlum's own Java installer
        uses. With `url` and `sha256` (a build pinned directly) it only describes the archive in
        messages.
        """
    )


class _ChoiceField(StringField):
    """A string from a fixed set, refused with the backend's own message (Pants' wording of
    `valid_choices` differs between releases)."""

    choices: ClassVar[tuple[str, ...]]
    unset_hint: ClassVar[str] = ""

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None and value not in cls.choices:
            allowed = " or ".join(f"`{c}`" for c in cls.choices)
            raise InvalidFieldException(
                f"The `{cls.alias}` field in target {address} must be {allowed}, but was {value!r}.{cls.unset_hint}"
            )
        return value


class DragonwellEditionField(_ChoiceField):
    alias = "edition"
    choices = ("standard", "extended")
    unset_hint = " Leave it unset for releases that have no editions (before 11.0.16)."
    default = None
    help = help_text(
        """
        `standard` or `extended`, for releases that come in both (11.0.16 and later). Leave it
        unset for older releases, which have no editions; for newer ones it defaults to `standard`.
        """
    )


class DragonwellLibcField(_ChoiceField):
    value: str
    alias = "libc"
    choices = ("musl", "glibc")
    unset_hint = " Occlum runs `musl` builds (the default)."
    default = "musl"
    help = help_text(
        """
        The C library the JDK is built for. Occlum runs musl (Alpine) builds, so `musl` is the
        default; the JDK's `bin/java` is checked (its ELF `PT_INTERP`) and a mismatch is an error.
        """
    )


class DragonwellUrlField(StringField):
    alias = "url"
    default = None
    help = help_text(
        """
        Pin a build that `[dragonwell].known_versions` lacks: the `https://`, `http://` or `file://`
        URL of the archive itself (its last path segment is the archive's file name). Needs
        `sha256`. `[dragonwell].mirrors` are tried first.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None:
            try:
                archive_file_name(value)
            except UrlError as e:
                raise InvalidFieldException(
                    f"The `{cls.alias}` field in target {address} is {redacted(value)!r}, which {e}. "
                    "For a local file use "
                    "file:///absolute/path/to/archive.tar.gz."
                ) from None
        return value


class DragonwellSha256Field(StringField):
    alias = "sha256"
    default = None
    help = "The archive's sha256 (64 hex digits), checked before anything reads it. Needed with `url`."

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is not None and not re.fullmatch(r"[0-9a-f]{64}", value):
            raise InvalidFieldException(
                f"The `{cls.alias}` field in target {address} must be 64 lowercase hex digits, "
                f"but was {value!r}. Compute it with `sha256sum <archive>`."
            )
        return value


class _BoundedIntField(IntField):
    """A whole number in [minimum, maximum], refused with the backend's own message: the bounds
    keep every derived size finite, and Pants' wording of `valid_numbers` differs between releases."""

    minimum: ClassVar[int]
    maximum: ClassVar[int]
    why_maximum: ClassVar[str] = ""

    @classmethod
    def compute_value(cls, raw_value: Optional[int], address: Address) -> Optional[int]:
        if raw_value is not None and (isinstance(raw_value, bool) or not isinstance(raw_value, int)):
            raise InvalidFieldException(
                f"The `{cls.alias}` field in target {address} must be a whole number from {cls.minimum} to "
                f"{cls.maximum}, but was {raw_value!r} ({type(raw_value).__name__}). Write it without quotes."
            )
        value = super().compute_value(raw_value, address)
        if value is not None and not cls.minimum <= value <= cls.maximum:
            raise InvalidFieldException(
                f"The `{cls.alias}` field in target {address} must be a whole number from {cls.minimum} to "
                f"{cls.maximum}{cls.why_maximum}, but was {value}."
            )
        return value


class DragonwellSizeField(_BoundedIntField):
    alias = "size"
    default = None
    minimum = 1
    maximum = 4 * 1024**3
    why_maximum = " (4 GiB; a JDK archive is about 200 MB)"
    help = "The archive's size in bytes, checked too when given. Optional: the sha256 alone pins the build."


class DragonwellJdkTarget(Target):
    alias = "dragonwell_jdk"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        DragonwellVersionField,
        DragonwellEditionField,
        DragonwellLibcField,
        DragonwellUrlField,
        DragonwellSha256Field,
        DragonwellSizeField,
    )
    help = help_text(
        """
        A pinned, checksum-verified Alibaba Dragonwell JDK for `occlum_java_image` targets.

        The archive is fetched once per machine (then it comes from Pants' cache), checked against
        its sha256, extracted with every member checked (no absolute paths, `..`, escaping links,
        hard links or devices), and validated: `bin/java` is an ELF of the declared `libc`,
        `lib/server/libjvm.so` exists, and the `release` file names the Java version.

            dragonwell_jdk(name="jdk", version="11.0.16.12.8")
            dragonwell_jdk(name="jdk-mirror", url="file:///srv/jdk/x.tar.gz", sha256="...")
        """
    )

    def validate(self) -> None:
        url, sha = self[DragonwellUrlField].value, self[DragonwellSha256Field].value
        if (url is None) != (sha is None):
            missing = "sha256" if sha is None else "url"
            raise InvalidFieldException(
                f"The `dragonwell_jdk` target {self.address} sets `{'url' if url else 'sha256'}` "
                f"without `{missing}`. A direct pin needs both: url=... and sha256=..."
            )
        if url is None and self[DragonwellSizeField].value is not None:
            raise InvalidFieldException(
                f"The `size` field in target {self.address} only applies to a `url` pin; "
                "known versions carry their own size. Remove `size` or add `url` and `sha256`."
            )


# ---------------------------------------------------------------------------------------------
# occlum_java_image
# ---------------------------------------------------------------------------------------------


class AddressFieldError(Exception):
    """An address field names no target; the message is the backend's own."""


def unresolved_address(alias: str, address: Address, value: str, expected: str) -> str:
    """The message for a field's address that names no target (the backend's words, not Pants')."""
    hint = f'; for a target named {value} in the same BUILD file write {alias}=":{value}"' if ":" not in value else ""
    return (
        f"The `{alias}` field of {address} is {value!r}, which does not name an existing target. It must be "
        f"the address of {expected}{hint}."
    )


class _AddressField(StringField, AsyncFieldMixin):
    """A field holding one target address; dependency inference turns it into a real edge."""

    expected: ClassVar[str]  # what the address must name, for messages
    example: ClassVar[str]  # the fix, in the message for a missing value
    # Shown as required by `pants help`; a missing value gets the backend's message, not Pants' own.
    required = True

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        if raw_value is None:
            raise InvalidFieldException(
                f"The `occlum_java_image` target {address} has no `{cls.alias}` field; it needs {cls.example}."
            )
        return super().compute_value(raw_value, address)

    def unresolved(self) -> str:
        return unresolved_address(self.alias, self.address, self.value or "", self.expected)

    def to_unparsed_address_inputs(self) -> UnparsedAddressInputs:
        return UnparsedAddressInputs(
            [self.value] if self.value else [],
            owning_address=self.address,
            description_of_origin=f"the `{self.alias}` field of {self.address}",
        )


class OcclumJavaImageJdkField(_AddressField):
    alias = "jdk"
    expected = "a `dragonwell_jdk` target"
    example = 'the address of a `dragonwell_jdk` target, e.g. jdk=":jdk"'
    help = 'The address of the `dragonwell_jdk` target whose JDK runs the service, e.g. `":jdk"`.'


class OcclumJavaImageJarField(_AddressField):
    alias = "jar"
    expected = "a target that yields the service's jar (`file`, `deploy_jar`, `shell_command`, ...)"
    example = 'the address of the target that yields the service\'s jar, e.g. jar=":app"'
    help = help_text(
        """
        The address of the service's executable jar: a `file` target holding one `.jar`, or any
        target Pants can package or generate into one `.jar` (`deploy_jar`, `archive`,
        `experimental_shell_command`, `adhoc_tool`). The jar's manifest must have a `Main-Class`,
        and its classes must run on the JDK's Java version.
        """
    )


class OcclumJavaImageDependencyLockField(OptionalSingleSourceField):
    alias = "dependency_lock"
    help = help_text(
        """
        A file, relative to the BUILD file, pinning the jar's nested jars (Spring Boot's
        `BOOT-INF/lib/`, a war's `WEB-INF/lib/`) by sha256: `sha256sum` output, one
        `<sha256>  <jar name>` line per jar. Every nested jar must be listed with its bytes'
        sha256, and every listed jar must be in the jar; otherwise the goal fails and names each
        difference. So the enclave holds exactly the dependencies you reviewed, whatever built the
        jar (Maven checks downloads against the repository's own checksums, not against yours).
        Regenerate it after reviewing a change: `cd BOOT-INF/lib && sha256sum *.jar` in the
        unpacked jar (docs/spring-boot.md). The check reuses the hashes the jar's inspection takes.
        """
    )


class OcclumJavaImageJvmOptionsField(StringSequenceField):
    alias = "jvm_options"
    default = ("-Xmx512m", "-XX:MaxMetaspaceSize=64m")
    help = help_text(
        """
        Options for `java`, before `-jar`. `-XX:-UseCompressedOops` (compressed oops make HotSpot
        ask for fixed low addresses, which is very slow on Occlum) and `-Dos.name=Linux` (Occlum's
        `uname` says `Occlum`) are added unless you set `UseCompressedOops` or `os.name` yourself.
        """
    )


class OcclumJavaImageMainArgsField(StringSequenceField):
    alias = "main_args"
    default = ()
    help = "Arguments passed to the service after `-jar <jar>`."


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class OcclumJavaImageEnvField(StringSequenceField):
    alias = "env"
    default = ()
    help = help_text(
        """
        Trusted environment of the enclave, as `KEY=VALUE` entries (Occlum's `env.default`). They
        are measured into the enclave. `LD_LIBRARY_PATH` defaults to the JDK's library folders;
        setting it here replaces that default.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Any], address: Address) -> Optional[tuple[str, ...]]:
        value = super().compute_value(raw_value, address) or ()
        seen: dict[str, str] = {}
        for entry in value:
            name, sep, _ = entry.partition("=")
            if not sep or not _ENV_NAME.fullmatch(name):
                hint = (
                    f'Write it as e.g. "{name or "KEY"}=value".'
                    if not sep
                    else "KEY must start with a letter or _ and hold only letters, digits and _."
                )
                raise InvalidFieldException(
                    f"The `{cls.alias}` field in target {address} must hold `KEY=VALUE` entries "
                    f"with KEY a variable name, but has {entry!r}. {hint}"
                )
            if name in seen:
                raise InvalidFieldException(
                    f"The `{cls.alias}` field in target {address} sets {name} twice "
                    f"({seen[name]!r} and {entry!r}). Keep one."
                )
            seen[name] = entry
        return value


class OcclumJavaImageUntrustedEnvField(StringSequenceField):
    alias = "untrusted_env"
    default = ()
    help = help_text(
        """
        Names of host environment variables that may pass into the enclave at run time and
        override `env` (Occlum's `env.untrusted`). Names only: the values come from the host and
        are not measured.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Any], address: Address) -> Optional[tuple[str, ...]]:
        value = super().compute_value(raw_value, address) or ()
        for name in value:
            if not _ENV_NAME.fullmatch(name):
                hint = f" Use just {name.split('=')[0]!r}; values come from the host." if "=" in name else ""
                raise InvalidFieldException(
                    f"The `{cls.alias}` field in target {address} must hold variable names "
                    f"(letters, digits, _), but has {name!r}.{hint}"
                )
        if len(set(value)) != len(value):
            raise InvalidFieldException(
                f"The `{cls.alias}` field in target {address} lists a name twice: {sorted(value)}."
            )
        return value


class OcclumSizeField(StringField):
    """An Occlum size string such as "1680MB"; parsed exactly as Occlum parses it. Unset: derived."""

    occlum_key: ClassVar[str]
    example: ClassVar[str]
    default = None

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        if isinstance(raw_value, int) and not isinstance(raw_value, bool):
            raise InvalidFieldException(
                f"The `{cls.alias}` field in target {address} must be a size string such as "
                f'"{cls.example}", but was the number {raw_value}. Occlum reads sizes as strings '
                "with a unit: KB, MB, GB (binary, case-sensitive)."
            )
        value = super().compute_value(raw_value, address)
        if value is None:
            return None
        try:
            size = parse_size(value)
        except SizeError as e:
            raise InvalidFieldException(
                f"The `{cls.alias}` field in target {address} must be an Occlum size such as "
                f'"{cls.example}", but was {value!r}: {e}'
            ) from e
        # Occlum maps these regions in pages; 0 or a partial page fails only inside the enclave.
        if size == 0 or size % 4096:
            raise InvalidFieldException(
                f"The `{cls.alias}` field in target {address} must be a positive multiple of 4KB "
                f'(the SGX page size), but was {value!r} ({size} bytes). Use e.g. "{cls.example}".'
            )
        return value

    @property
    def bytes(self) -> Optional[int]:
        return None if self.value is None else parse_size(self.value)


def _size_help(doc: str, example: str, key: str) -> str:
    return softwrap(
        f"""
        {doc} Written to `{key}` in Occlum.json, e.g. `"{example}"`. Unset (the default): derived
        from `jvm_options`, `java_threads` and `child_processes` by the JVM sizing model for
        `[occlum].version` (see `pants enclave-memory`). A value set here that cannot hold the JVM
        is an error that shows the arithmetic.
        """
    )


class OcclumJavaImageUserSpaceSizeField(OcclumSizeField):
    alias = "user_space_size"
    example = "1680MB"
    occlum_key = "resource_limits.user_space_size"
    help = _size_help(
        "The enclave's whole user address space: the JVM's heap, metaspace, code cache, thread stacks "
        "and libraries must fit. Without EDMM it is committed when the enclave loads.",
        example,
        occlum_key,
    )


class OcclumJavaImageUserSpaceMaxSizeField(OcclumSizeField):
    alias = "user_space_max_size"
    example = "1680MB"
    occlum_key = "resource_limits.user_space_max_size"
    help = help_text(
        f"""
        Occlum 0.30.0 and later: the most user space the enclave may have. Without EDMM it is the
        user space (it takes the place of `user_space_size`, which is then only written as the
        smaller of the two); with EDMM, the limit the user space grows to from `user_space_size`.
        Written to `{occlum_key}`, e.g. `"{example}"` (Occlum's own Java demo: `user_space_size="1MB"`
        with `user_space_max_size="1680MB"`). Unset (the default): not written. It must hold the JVM
        (see `pants enclave-memory`); set on an older `[occlum].version` it is an error.
        """
    )


class OcclumJavaImageKernelSpaceHeapSizeField(OcclumSizeField):
    alias = "kernel_space_heap_size"
    example = "64MB"
    occlum_key = "resource_limits.kernel_space_heap_size"
    help = _size_help("The LibOS kernel heap. Raise it on `memory allocation of N bytes failed`.", example, occlum_key)


class OcclumJavaImageKernelSpaceHeapMaxSizeField(OcclumSizeField):
    alias = "kernel_space_heap_max_size"
    example = "64MB"
    occlum_key = "resource_limits.kernel_space_heap_max_size"
    help = help_text(
        f"""
        Occlum 0.29.4 and later: the most LibOS kernel heap. Without EDMM it is the kernel heap (it
        takes the place of `kernel_space_heap_size`); with EDMM, the limit the kernel heap grows to.
        Written to `{occlum_key}`, e.g. `"{example}"` (Occlum's own Java demo: `kernel_space_heap_size="1MB"`
        with `kernel_space_heap_max_size="64MB"`). Unset (the default): not written; set on an
        older `[occlum].version` it is an error.
        """
    )


class OcclumJavaImageKernelSpaceStackSizeField(OcclumSizeField):
    alias = "kernel_space_stack_size"
    example = "1MB"
    occlum_key = "resource_limits.kernel_space_stack_size"
    help = _size_help("The LibOS kernel stack per thread.", example, occlum_key)


class OcclumJavaImageDefaultHeapSizeField(OcclumSizeField):
    alias = "default_heap_size"
    example = "256MB"
    occlum_key = "process.default_heap_size"
    help = _size_help("The brk heap of each process (malloc of musl).", example, occlum_key)


class OcclumJavaImageDefaultStackSizeField(OcclumSizeField):
    alias = "default_stack_size"
    example = "4MB"
    occlum_key = "process.default_stack_size"
    help = _size_help("The main-thread stack of each process.", example, occlum_key)


class OcclumJavaImageDefaultMmapSizeField(OcclumSizeField):
    alias = "default_mmap_size"
    example = "1400MB"
    occlum_key = "process.default_mmap_size"
    help = _size_help(
        "The mmap region of each process; reserved per process before Occlum 0.24.2, only a limit after.",
        example,
        occlum_key,
    )


# Every thread of an enclave costs an SGX TCS and a kernel stack; far past a JVM's few hundred
# threads the derived sizes stop meaning anything.
MAX_THREADS = 4096


class OcclumJavaImageMaxNumOfThreadsField(_BoundedIntField):
    alias = "max_num_of_threads"
    default = None
    minimum = 1
    maximum = MAX_THREADS
    why_maximum = " (each thread costs an SGX TCS and a kernel stack)"
    help = help_text(
        """
        The most threads (SGX TCSs) the enclave can run at once, JVM GC, JIT and service threads
        included. Written to `resource_limits.max_num_of_threads`. Unset (the default): `java_threads`
        plus one per child process. Below that estimate is an error.
        """
    )


class OcclumJavaImageJavaThreadsField(_BoundedIntField):
    value: int
    alias = "java_threads"
    default = 64
    minimum = 1
    maximum = MAX_THREADS
    why_maximum = " (each thread costs an SGX TCS and a kernel stack)"
    help = help_text(
        """
        How many threads the service's JVM runs at most: GC, JIT and VM threads (20-30) plus the
        service's own (a Spring Boot service: Tomcat workers, acceptor, schedulers). Drives the thread
        stacks in the memory model and the derived `max_num_of_threads`. Default 64, what Occlum's
        Spring Boot demo runs with; cap Tomcat (`server.tomcat.threads.max`) or raise this.
        """
    )


class OcclumJavaImageChildProcessesField(_BoundedIntField):
    value: int
    alias = "child_processes"
    default = 0
    minimum = 0
    maximum = 256
    why_maximum = " (before Occlum 0.24.2 each reserves its own mmap region)"
    help = help_text(
        """
        How many child processes the service spawns at once (`posix_spawn`; Occlum has no fork).
        Before Occlum 0.24.2 each reserves its own `default_mmap_size`; later they share the pool.
        """
    )


class OcclumJavaImageMemoryHeadroomField(_BoundedIntField):
    value: int
    alias = "memory_headroom"
    default = 10
    minimum = 0
    maximum = 100
    why_maximum = " (percent)"
    help = help_text(
        """
        Headroom in percent (0 to 100) added to the JVM's mappings when limits are derived: guard
        pages, threads with bigger stacks than `-Xss`, allocator fragmentation. Default 10.
        """
    )


class OcclumJavaImageDebuggableField(BoolField):
    value: bool
    alias = "debuggable"
    default = True
    help = help_text(
        """
        Whether the enclave can be debugged (`metadata.debuggable`). Debuggable enclaves are not
        confidential; set `False` for release builds, which must then be signed with your own key.
        """
    )


class _U16Field(_BoundedIntField):
    value: int
    default = 0
    minimum = 0
    maximum = 0xFFFF
    why_maximum = " (an SGX 16-bit field)"


class OcclumJavaImageProductIdField(_U16Field):
    alias = "product_id"
    help = "The enclave's product id (ISVPRODID, `metadata.product_id`), 0 to 65535."


class OcclumJavaImageVersionNumberField(_U16Field):
    alias = "version_number"
    help = "The enclave's security version (ISVSVN, `metadata.version_number`), 0 to 65535."


class OcclumJavaImageMountsField(Field):
    alias = "mounts"
    default = ()
    value: tuple[Mount, ...]
    help = help_text(
        """
        Extra file systems, after Occlum's root and `/host` mounts. A list of dicts with
        `target` (absolute path in the enclave), `type` (`hostfs`, `sefs` or `ramfs`), `source`
        (host path; needed for `hostfs` and `sefs`, not allowed for `ramfs`) and optional
        `options` (a `sefs` takes `temporary` and, from Occlum 0.29.5, `cache_size`). Mounts are
        honoured from Occlum 0.21.0.

            mounts=[{"target": "/data", "type": "hostfs", "source": "./data"}]
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[Any], address: Address) -> tuple[Mount, ...]:
        value = super().compute_value(raw_value, address)
        if value is None:
            return ()
        if not isinstance(value, (list, tuple)):
            raise InvalidFieldException(
                f"The `{cls.alias}` field in target {address} must be a list of dicts, but was "
                f"{as_written(value)!r} ({'dict' if isinstance(value, Mapping) else type(value).__name__}). "
                'Write e.g. mounts=[{"target": "/data", "type": "ramfs"}].'
            )
        mounts: list[Mount] = []
        for i, raw in enumerate(value):
            try:
                mounts.append(Mount.from_dict(raw))
            except MountError as e:
                raise InvalidFieldException(f"The `{cls.alias}` field in target {address}, entry {i} {e}") from None
        targets = [m.target for m in mounts]
        dups = sorted({t for t in targets if targets.count(t) > 1})
        if dups:
            raise InvalidFieldException(
                f"The `{cls.alias}` field in target {address} mounts {dups} more than once. "
                "Each target path may be mounted once."
            )
        return tuple(mounts)


# The `files` field is for a service's config and a few assets: a bound keeps a generated BUILD
# value from holding the build (the cost per entry is constant: bench/files_scale.py).
MAX_FILES_ENTRIES = 20_000


class OcclumJavaImageFilesField(DictStringToStringField, AsyncFieldMixin):
    alias = "files"
    help = help_text(
        f"""
        Extra files placed in the image: a dict from an absolute path in the enclave to the
        address of a `file` target (or a target generating one file), e.g.
        `{{"/etc/app/application.yaml": ":config"}}`. They are measured with the image. At most
        {MAX_FILES_ENTRIES:,} entries, each path at most {image_paths.MAX_IMAGE_DEPTH} components deep.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[dict[str, str]], address: Address):
        if isinstance(raw_value, Mapping) and len(raw_value) > MAX_FILES_ENTRIES:
            raise InvalidFieldException(
                f"The `{cls.alias}` field in target {address} has {len(raw_value)} entries; at most "
                f"{MAX_FILES_ENTRIES} are allowed. Put many files into one archive or into the jar, and "
                "map that instead."
            )
        value = super().compute_value(raw_value, address)
        if not value:
            return value
        written: dict[str, str] = {}  # normalised enclave path -> the key as written
        out: dict[str, str] = {}
        for path, spec in value.items():
            try:
                key = image_paths.enclave_file(path)
            except image_paths.PathError as e:
                raise InvalidFieldException(
                    f"The `{cls.alias}` field in target {address} has the enclave path {image_paths.quoted(path)}, "
                    f"which {e}. "
                    'Map absolute file paths, e.g. {"/etc/app/application.yaml": ":config"}.'
                ) from None
            if key in written:
                raise InvalidFieldException(
                    f"The `{cls.alias}` field in target {address} names the enclave path {key} twice "
                    f"(as {written[key]!r} and {path!r}). Keep one."
                )
            written[key], out[key] = path, spec
        return FrozenDict(out)

    def to_unparsed_address_inputs(self) -> UnparsedAddressInputs:
        return UnparsedAddressInputs(
            sorted(set((self.value or {}).values())),
            owning_address=self.address,
            description_of_origin=f"the `{self.alias}` field of {self.address}",
        )


class _ImagePathField(StringField):
    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is None:
            return None
        try:
            return image_paths.enclave_dir(value)
        except image_paths.PathError as e:
            raise InvalidFieldException(
                f"The `{cls.alias}` field in target {address} is {image_paths.quoted(value)}, which {e}. "
                'It must be an absolute folder in the enclave other than `/`, e.g. "/opt/app".'
            ) from None


class OcclumJavaImageJdkDirField(_ImagePathField):
    alias = "jdk_dir"
    default = None
    help = help_text(
        f"""
        Where the JDK goes in the enclave. Default `/usr/lib/jvm/java-<major>-alibaba-dragonwell/jre`,
        as in Occlum's Java demos. `entry_points` and `LD_LIBRARY_PATH` follow it. At most
        {image_paths.MAX_IMAGE_DEPTH - 1} components, and with the JDK's deepest file at most
        {image_paths.MAX_IMAGE_DEPTH}.
        """
    )


class OcclumJavaImageJarDirField(_ImagePathField):
    value: str
    alias = "jar_dir"
    default = "/usr/lib/spring"
    help = (
        "The folder of the enclave that holds the jar. Default `/usr/lib/spring`, as in Occlum's Spring Boot "
        f"demo. At most {image_paths.MAX_IMAGE_DEPTH - 1} components."
    )


class OcclumJavaImageOutputPathField(OutputPathField):
    help = help_text(
        f"""
        Where under `dist/` the output goes: the staged instance's folder (holding `Occlum.json`,
        `image/` and `occlum-image.json`, with `<output_path>.cdx.json` beside it), or, with the
        toolchain, the base name of `<output_path>.tar.gz`, `.measurements.json`, `.ra_config.json`
        and `.cdx.json`. A relative path without `.` or `..`, of at most
        {image_paths.MAX_OUTPUT_DEPTH} components. Defaults to `<path.to.target>/<target name>`.
        """
    )

    @classmethod
    def compute_value(cls, raw_value: Optional[str], address: Address) -> Optional[str]:
        value = super().compute_value(raw_value, address)
        if value is None:
            return None
        try:
            return image_paths.relative_output(value)
        except image_paths.PathError as e:
            raise InvalidFieldException(
                f"The `{cls.alias}` field in target {address} is {image_paths.quoted(value)}, which {e}. "
                'Write a relative path under dist/, e.g. "svc/enclave".'
            ) from None

    def checked_value(self) -> str:
        """The path under dist/, checked as resolved: the default is built from the target's folder
        and name, which Pants lets hold what an explicit value may not (format characters, depth),
        and from Pants 2.23 any value may be a template (`${target_name}`) resolved only here."""
        value = self.value_or_default(file_ending=None)
        try:
            return image_paths.relative_output(value)
        except image_paths.PathError as e:
            raise InvalidFieldException(
                f"The `{self.alias}` of target {self.address} is {image_paths.quoted(value)} (unset, it is built "
                f"from the target's folder and name), which {e}. Rename the target or its folder, or set "
                f'`{self.alias}` to a plain relative path under dist/, e.g. output_path="svc/enclave".'
            ) from None


class OcclumJavaImageDependenciesField(Dependencies):
    pass


class OcclumJavaImageTarget(Target):
    alias = "occlum_java_image"
    core_fields = (
        *COMMON_TARGET_FIELDS,
        OcclumJavaImageDependenciesField,
        OcclumJavaImageJdkField,
        OcclumJavaImageJarField,
        OcclumJavaImageDependencyLockField,
        OcclumJavaImageJvmOptionsField,
        OcclumJavaImageMainArgsField,
        OcclumJavaImageEnvField,
        OcclumJavaImageUntrustedEnvField,
        OcclumJavaImageUserSpaceSizeField,
        OcclumJavaImageUserSpaceMaxSizeField,
        OcclumJavaImageKernelSpaceHeapSizeField,
        OcclumJavaImageKernelSpaceHeapMaxSizeField,
        OcclumJavaImageKernelSpaceStackSizeField,
        OcclumJavaImageMaxNumOfThreadsField,
        OcclumJavaImageJavaThreadsField,
        OcclumJavaImageChildProcessesField,
        OcclumJavaImageMemoryHeadroomField,
        OcclumJavaImageDefaultHeapSizeField,
        OcclumJavaImageDefaultStackSizeField,
        OcclumJavaImageDefaultMmapSizeField,
        OcclumJavaImageDebuggableField,
        OcclumJavaImageProductIdField,
        OcclumJavaImageVersionNumberField,
        OcclumJavaImageMountsField,
        OcclumJavaImageFilesField,
        OcclumJavaImageJdkDirField,
        OcclumJavaImageJarDirField,
        OcclumJavaImageOutputPathField,
        EnvironmentField,
    )
    help = help_text(
        """
        A Java service packaged as an Occlum SGX enclave instance.

        `pants package` fetches the JDK of `jdk`, lays out the image (the JDK under
        `jdk_dir`, the jar under `jar_dir`, `files`), generates an `Occlum.json` for
        `[occlum].version`, checks it against that release's schema, and writes the instance to
        `dist/`.

            occlum_java_image(
                name="enclave",
                jdk=":jdk",
                jar=":app",
                jvm_options=["-Xmx512m", "-XX:MaxMetaspaceSize=64m"],
            )
        """
    )

    def validate(self) -> None:
        needs = {
            OcclumJavaImageJdkField: 'the address of a `dragonwell_jdk` target, e.g. jdk=":jdk"',
            OcclumJavaImageJarField: 'the address of the target that yields the service\'s jar, e.g. jar=":app"',
        }
        for field, what in needs.items():
            if not self[field].value:
                raise InvalidFieldException(
                    f"The `{self.alias}` target {self.address} has no `{field.alias}` field; it needs {what}."
                )


@dataclass(frozen=True)
class OcclumJavaImageReferencesFieldSet(FieldSet):
    """The fields whose addresses become dependency edges (so `--changed-dependents` works)."""

    required_fields = (OcclumJavaImageJdkField,)

    jdk: OcclumJavaImageJdkField
    jar: OcclumJavaImageJarField
    files: OcclumJavaImageFilesField


def target_types():
    return [DragonwellJdkTarget, OcclumJavaImageTarget]
