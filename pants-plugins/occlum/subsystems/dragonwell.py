"""The `[dragonwell]` subsystem: the table of pinned Dragonwell builds and where to fetch them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pants.option.option_types import StrListOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import bullet_list, softwrap

from occlum.jdk.urls import UrlError, archive_file_name, check_mirror_template, redacted

_GH = "https://github.com/dragonwell-project"

# Only pins that two separately published sources agree on (docs/dragonwell-builds.md, "Pins agreed
# by two sources", which also says who vouches for each). Size is empty where no source recorded
# it: the sha256 alone is then checked, which is what matters.
# Format: version|edition|libc|platform|sha256|size|url  (edition "-" for pre-edition releases).
DEFAULT_KNOWN_VERSIONS = (
    "11.0.16.12.8|standard|musl|linux_x86_64|44ca11f491873863e43bb6e476df7fd8fa453c563a932cf488b9d00ab7ef68c9||"
    f"{_GH}/dragonwell11/releases/download/dragonwell-standard-11.0.16.12_jdk-11.0.16-ga/Alibaba_Dragonwell_Standard_11.0.16.12.8_x64_alpine-linux.tar.gz",
    "11.0.16.12.8|extended|musl|linux_x86_64|ea9de44b853172b5c6594fbe3d81723a21ad978a225ac1fa393925349c4bb7b9||"
    f"{_GH}/dragonwell11/releases/download/dragonwell-extended-11.0.16.12_jdk-11.0.16-ga/Alibaba_Dragonwell_Extended_11.0.16.12.8_x64_alpine-linux.tar.gz",
    "11.0.17.13.8|standard|musl|linux_x86_64|12859813fe860e36995565574c1d165583cb7d34e8f917ec515cf044453d466e||"
    f"{_GH}/dragonwell11/releases/download/dragonwell-standard-11.0.17.13_jdk-11.0.17-ga/Alibaba_Dragonwell_Standard_11.0.17.13.8_x64_alpine-linux.tar.gz",
    "11.0.20.16.8|standard|musl|linux_x86_64|cdbfc9135b93439e0b37b02050a4d53d1f82ce6e4154ac54b31d17fe3c76f11d||"
    f"{_GH}/dragonwell11/releases/download/dragonwell-standard-11.0.20.16_jdk-11.0.20-ga/Alibaba_Dragonwell_Standard_11.0.20.16.8_x64_alpine-linux.tar.gz",
    "11.0.15.11.9|-|musl|linux_x86_64|52ad29ef644b8c268cf2c5b3d5fc15a9b0be6f246407ddce92e547b8473b642f||"
    f"{_GH}/dragonwell11/releases/download/dragonwell-11.0.15.11_jdk-11.0.15-ga/Alibaba_Dragonwell_11.0.15.11.9_x64_alpine-linux.tar.gz",
    "11.0.11.7|-|musl|linux_x86_64|609bf39d47f567570de8becf632e27e0fbd14ae3102fab96f347c72798c49010|192995510|"
    f"{_GH}/dragonwell11/releases/download/dragonwell-11.0.11.7_jdk-11.0.11-ga/Alibaba_Dragonwell_11.0.11.7_x64_alpine-linux.tar.gz",
    "11.0.11.6|-|musl|linux_x86_64|556dabaf88dac69c12b2b880acafe980d746b97b70fcf4539f49ec4da66f227f|192995954|"
    f"{_GH}/dragonwell11/releases/download/dragonwell-11.0.11.6_jdk-11.0.11-ga/Alibaba_Dragonwell_11.0.11.6_x64_alpine-linux.tar.gz",
    "11.0.10.5|-|musl|linux_x86_64|73eaa7f288b9c8be015c2dadb7480e2decaba214eb490a699e1b6614a8babcb3|192805498|"
    f"{_GH}/dragonwell11/releases/download/dragonwell-11.0.10.5_jdk-11.0.10-ga/Alibaba_Dragonwell_11.0.10.5_alpine-linux_x64.tar.gz",
    "17.0.9.0.10.9|standard|musl|linux_x86_64|c7a36b2eb4ff9cb9d596f41d7d90fae6ebe87334595b11850401389e933a2f46||"
    f"{_GH}/dragonwell17/releases/download/dragonwell-standard-17.0.9.0.10%2B9_jdk-17.0.9-ga/Alibaba_Dragonwell_Standard_17.0.9.0.10.9_x64_alpine-linux.tar.gz",
    "21.0.1.0.1.12|standard|musl|linux_x86_64|b9cea58bffe555484b831ff6d7cdb277c07e86a76d32b373ec35fa21ecb5fdc9||"
    f"{_GH}/dragonwell21/releases/download/dragonwell-standard-21.0.1.0.1%2B12_jdk-21.0.1-ga/Alibaba_Dragonwell_Standard_21.0.1.0.1.12_x64_alpine-linux.tar.gz",
    "21.0.6.0.6.7|standard|musl|linux_x86_64|872a70160a4034da052cba4c2fcc04942fd5976c9a44a45261110512b9e26edc||"
    f"{_GH}/dragonwell21/releases/download/dragonwell-standard-21.0.6.0.6%2B7_jdk-21.0.6-ga/Alibaba_Dragonwell_Standard_21.0.6.0.6.7_x64_alpine-linux.tar.gz",
    "11.0.16.12.8|standard|glibc|linux_x86_64|42d673d9effff252140e1402959881c3f255ee3a8b8776871fd8e775facb9584||"
    f"{_GH}/dragonwell11/releases/download/dragonwell-standard-11.0.16.12_jdk-11.0.16-ga/Alibaba_Dragonwell_Standard_11.0.16.12.8_x64_linux.tar.gz",
    "11.0.11.7|-|glibc|linux_x86_64|84d62e0daa5f1609a9086cffe07b8bdad734ad3b012827bb19a99eee8bbd41f3|192132285|"
    f"{_GH}/dragonwell11/releases/download/dragonwell-11.0.11.7_jdk-11.0.11-ga/Alibaba_Dragonwell_11.0.11.7_x64_linux.tar.gz",
)

DEFAULT_VERSION = "11.0.16.12.8"
NO_EDITION = "-"


class KnownVersionsError(ValueError):
    """A `[dragonwell]` option holds a value the backend cannot use; the message names it."""


@dataclass(frozen=True)
class DragonwellPin:
    version: str
    edition: str  # "standard", "extended" or "-" for releases before editions existed
    libc: str
    platform: str
    sha256: str
    size: int | None
    url: str

    @property
    def filename(self) -> str:
        return archive_file_name(self.url)

    def describe(self) -> str:
        edition = "" if self.edition == NO_EDITION else f" {self.edition}"
        return f"{self.version}{edition} {self.libc} {self.platform}"

    @classmethod
    def parse(cls, line: str) -> DragonwellPin:
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 7:
            raise KnownVersionsError(
                f"[dragonwell].known_versions entry {line!r} has {len(parts)} fields, but needs 7: "
                "version|edition|libc|platform|sha256|size|url (edition '-' if the release has "
                "none; size may be empty)."
            )
        version, edition, libc, platform, sha256, size, url = parts
        problems = []
        if edition not in ("standard", "extended", NO_EDITION):
            problems.append(f"edition {edition!r} is not one of standard, extended, -")
        if libc not in ("musl", "glibc"):
            problems.append(f"libc {libc!r} is not one of musl, glibc")
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            problems.append(f"sha256 {sha256!r} is not 64 lowercase hex digits")
        if size and not size.isdigit():
            problems.append(f"size {size!r} is not a whole number of bytes")
        try:
            archive_file_name(url)
        except UrlError as e:
            problems.append(f"url {redacted(url)!r} {e}")
        if problems:
            raise KnownVersionsError(
                f"[dragonwell].known_versions entry {redacted(line)!r} is invalid: " + "; ".join(problems) + "."
            )
        return cls(version, edition, libc, platform, sha256, int(size) if size else None, url)


class DragonwellSubsystem(Subsystem):
    options_scope = "dragonwell"
    help = "Where `dragonwell_jdk` targets get Alibaba Dragonwell JDK builds, and how they are pinned."

    known_versions = StrListOption(
        default=list(DEFAULT_KNOWN_VERSIONS),
        help=softwrap(
            """
            The pinned Dragonwell builds that a `dragonwell_jdk` target can name by `version`,
            `edition` and `libc`. Each entry is `version|edition|libc|platform|sha256|size|url`:
            `edition` is `standard`, `extended`, or `-` for releases from before editions existed;
            `size` (bytes) may be empty when the vendor publishes none, the sha256 is always checked.

            The defaults are the builds whose checksum at least two separately published sources
            agree on (for 11.0.10.5 those two share one upstream; see docs/dragonwell-builds.md);
            add to them with `known_versions.add = [...]` or pin one build on the target with
            `url` and `sha256`.
            """
        ),
        advanced=True,
    )
    mirrors = StrListOption(
        default=[],
        help=softwrap(
            """
            URL templates tried, in order, before a build's own URL. `{filename}` is the archive's
            file name (e.g. `Alibaba_Dragonwell_Standard_11.0.16.12.8_x64_alpine-linux.tar.gz`),
            `{version}` the Dragonwell version. Works with `https://`, `http://` and `file://`,
            e.g. `file:///srv/jdk-mirror/{filename}` for air-gapped CI. The checksum pin does not
            change: a mirror must serve the same bytes.
            """
        ),
    )
    fetch_env_vars = StrListOption(
        default=[
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "NO_PROXY",
            "no_proxy",
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
        ],
        help=softwrap(
            """
            Environment variables passed to the download step, as `NAME` (copied from the
            environment Pants runs in) or `NAME=value`. Proxies and CA bundles go here. Only set
            variables are passed. Their values are part of the download step's cache key (and of
            the action a remote cache stores), so use a proxy that takes no credentials in its URL.
            """
        ),
        advanced=True,
    )

    def pins(self) -> tuple[DragonwellPin, ...]:
        return tuple(DragonwellPin.parse(line) for line in self.known_versions)

    def checked_mirrors(self) -> tuple[str, ...]:
        for template in self.mirrors:
            try:
                check_mirror_template(template)
            except UrlError as e:
                raise KnownVersionsError(
                    f"The option `[dragonwell].mirrors` holds {redacted(template)!r}, which {e}. "
                    "Write a URL template such as "
                    '"file:///srv/jdk-mirror/{filename}".'
                ) from None
        return tuple(self.mirrors)

    def candidate_urls(self, pin: DragonwellPin) -> tuple[str, ...]:
        urls = [m.format(filename=pin.filename, version=pin.version) for m in self.checked_mirrors()]
        return tuple(dict.fromkeys([*urls, pin.url]))


def describe_pins(pins: Iterable[DragonwellPin]) -> str:
    return bullet_list(sorted(p.describe() for p in pins))
