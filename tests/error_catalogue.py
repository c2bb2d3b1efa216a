"""The catalogue of bad inputs and the error each one gets (docs/error-catalogue.md is generated from it).

Each case sets up one wrong BUILD field, option, archive, jar or toolchain, runs what a user runs
(`get_target` for BUILD-file checks, `package` for the rest), and records the message the user
sees. `error_catalogue_test.py` checks every whole message against the generated doc, and that
each one names the target or option, the value found, and what to do.
"""

from __future__ import annotations

import random
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from pants.engine.addresses import Address
from pants.testutil.rule_runner import RuleRunner

from occlum_testutil import ServedJdk, fake_jdk, new_rule_runner, package_image, serve_fake_jdk

ADDR = Address("svc", target_name="enclave")


@dataclass(frozen=True)
class Case:
    id: str
    what: str  # the bad input, as a user would describe it
    image: dict = field(default_factory=dict)  # occlum_java_image fields
    jdk: str = ""  # extra dragonwell_jdk(...) arguments
    options: tuple = ()
    mentions: tuple = ()  # text the message must contain (besides the address/option check)
    setup: Optional[str] = None  # name of a special setup below
    toolchain: bool = False  # needs the Occlum test double


CASES = (
    Case(
        "size-lowercase-unit", '`user_space_size="256mb"`', {"user_space_size": "256mb"}, mentions=("'256mb'", "256MB")
    ),
    Case("size-fraction", '`user_space_size="1.5GB"`', {"user_space_size": "1.5GB"}, mentions=("'1.5GB'",)),
    Case("size-short-unit", '`default_mmap_size="256M"`', {"default_mmap_size": "256M"}, mentions=("'256M'",)),
    Case("size-number", "`kernel_space_heap_size=256` (a number)", {"kernel_space_heap_size": 256}, mentions=("256",)),
    Case("size-bogus", '`default_heap_size="bogus"`', {"default_heap_size": "bogus"}, mentions=("'bogus'",)),
    Case("threads-zero", "`max_num_of_threads=0`", {"max_num_of_threads": 0}, mentions=("was 0", "1 to 4096")),
    Case("java-threads-negative", "`java_threads=-4`", {"java_threads": -4}, mentions=("-4",)),
    Case("product-id-16-bit", "`product_id=70000`", {"product_id": 70000}, mentions=("70000", "65535")),
    Case("env-without-equals", '`env=["FOO"]`', {"env": ["FOO"]}, mentions=("'FOO'", "KEY=VALUE")),
    Case("env-duplicate", '`env=["A=1", "A=2"]`', {"env": ["A=1", "A=2"]}, mentions=("A",)),
    Case(
        "untrusted-with-value",
        '`untrusted_env=["PORT=80"]`',
        {"untrusted_env": ["PORT=80"]},
        mentions=("'PORT=80'", "'PORT'"),
    ),
    Case(
        "mount-relative",
        'a mount with `target="data"`',
        {"mounts": [{"target": "data", "type": "hostfs", "source": "./d"}]},
        mentions=("'data'", "absolute"),
    ),
    Case(
        "mount-duplicate",
        "two mounts at `/data`",
        {"mounts": [{"target": "/data", "type": "ramfs"}, {"target": "/data", "type": "ramfs"}]},
        mentions=("/data",),
    ),
    Case(
        "mount-type",
        "a mount of type `nfs`",
        {"mounts": [{"target": "/data", "type": "nfs", "source": "x"}]},
        mentions=("'nfs'", "hostfs"),
    ),
    Case(
        "mount-reserved", "a mount at `/host`", {"mounts": [{"target": "/host", "type": "ramfs"}]}, mentions=("/host",)
    ),
    Case(
        "files-relative",
        '`files={"etc/app.yml": ":app"}`',
        {"files": {"etc/app.yml": ":app"}},
        mentions=("'etc/app.yml'",),
    ),
    Case("jdk-dir-relative", '`jdk_dir="jre"`', {"jdk_dir": "jre"}, mentions=("'jre'",)),
    Case("jdk-dir-root-dot", '`jdk_dir="/."`', {"jdk_dir": "/."}, mentions=("'/.'", "`.` or `..`")),
    Case("files-root-dot", '`files={"/.": ...}`', {"files": {"/.": ":app"}}, mentions=("'/.'", "`.` or `..`")),
    Case("files-nul", "a `files` path with a NUL", {"files": {"/etc/a\x00b": ":app"}}, mentions=("control character",)),
    Case(
        "files-long-component",
        "a `files` path with a 300-character component",
        {"files": {"/etc/" + "a" * 300: ":app"}},
        mentions=("300 bytes", "255"),
    ),
    Case(
        "files-dollar",
        "a `files` path with `$`",
        {"files": {"/etc/$HOME/app.yml": ":app"}},
        mentions=("`$`", "copy_bom"),
    ),
    Case("output-path-climbs", '`output_path="../../x"`', {"output_path": "../../x"}, mentions=("'../../x'", "dist/")),
    Case(
        "files-too-deep",
        "a `files` path 17 components deep (Pants' engine crashes on ~35)",
        {"files": {"/" + "/".join("d" * 17): ":app"}},
        mentions=("17 components; at most 16", "Pants' engine crashes"),
    ),
    Case(
        "jdk-dir-too-deep",
        "a `jdk_dir` of 16 components (the JDK needs room under it)",
        {"jdk_dir": "/" + "/".join("j" * 16)},
        mentions=("16 components; at most 15", "leaving room"),
    ),
    Case(
        "output-path-too-deep",
        "an `output_path` of 9 components",
        {"output_path": "/".join("o" * 9)},
        mentions=("9 components; at most 8", "under dist/"),
    ),
    Case(
        "files-bidi-override",
        "a `files` path with a right-to-left override (U+202E)",
        {"files": {"/etc/app\u202elmy.exe": ":app"}},
        mentions=("RIGHT-TO-LEFT OVERRIDE (U+202E)",),
    ),
    Case(
        "jdk-dir-division-slash",
        "a `jdk_dir` with a division slash (U+2215), which looks like `/`",
        {"jdk_dir": "/usr/lib\u2215jvm"},
        mentions=("DIVISION SLASH (U+2215)",),
    ),
    Case(
        "mount-cache-size-bogus",
        'a sefs mount with `cache_size` "bogus"',
        {"mounts": [{"target": "/data", "type": "sefs", "source": "./d", "options": {"cache_size": "bogus"}}]},
        mentions=("'bogus'", "cache_size"),
    ),
    Case(
        "mount-cache-over-kernel-heap",
        "a sefs `cache_size` larger than the kernel heap",
        {"mounts": [{"target": "/data", "type": "sefs", "source": "./d", "options": {"cache_size": "128MB"}}]},
        mentions=("cache_size 128MB", "kernel heap"),
    ),
    Case("mount-root-dot", 'a mount at `"/."`', {"mounts": [{"target": "/.", "type": "ramfs"}]}, mentions=("'/.'",)),
    Case(
        "java-threads-huge",
        "`java_threads=2**63`",
        {"java_threads": 2**63},
        mentions=("9223372036854775808", "1 to 4096"),
    ),
    Case(
        "memory-headroom-huge", "`memory_headroom=1000000`", {"memory_headroom": 1000000}, mentions=("1000000", "100")
    ),
    Case("jvm-xmx-zero", '`jvm_options=["-Xmx0"]`', {"jvm_options": ["-Xmx0"]}, mentions=("-Xmx", "2m")),
    Case(
        "jvm-xmx-huge",
        '`jvm_options=["-Xmx99999999999999999999g"]`',
        {"jvm_options": ["-Xmx99999999999999999999g"]},
        mentions=("`jvm_options`", "-Xmx", "256g"),
    ),
    Case("jvm-xss-huge", '`jvm_options=["-Xss1t"]`', {"jvm_options": ["-Xss1t"]}, mentions=("-Xss", "1g")),
    Case(
        "url-ends-in-slash",
        "`url=` ending in `/`",
        jdk="url='https://mirror.example/jdk/', sha256='" + "0" * 64 + "'",
        mentions=("file name",),
    ),
    Case(
        "url-fragment",
        "`url=` ending in `#/..`",
        jdk="url='https://m.example/a.tar.gz#/..', sha256='" + "0" * 64 + "'",
        mentions=("fragment",),
    ),
    Case(
        "url-with-credentials",
        "`url=` with `user:password@` in it",
        jdk="url='https://ci:s3cret@m.example/a.tar.gz', sha256='" + "0" * 64 + "'",
        mentions=("has credentials", "https://***@m.example/a.tar.gz"),
    ),
    Case(
        "mirror-template-unknown-placeholder",
        "`[dragonwell].mirrors` with `{nope}`",
        options=("--dragonwell-mirrors=['https://mirror.example/{nope}/{filename}']",),
        mentions=("{nope}", "{filename}"),
    ),
    Case("jdk-missing", "no `jdk` field", {"jdk": None}, mentions=("`jdk`", "dragonwell_jdk", 'jdk=":jdk"')),
    Case("edition-unknown", '`edition="enterprise"`', jdk="edition='enterprise'", mentions=("enterprise", "standard")),
    Case("libc-unknown", '`libc="uclibc"`', jdk="libc='uclibc'", mentions=("uclibc", "musl")),
    Case(
        "sha256-short",
        '`sha256="abc"` with a `url`',
        jdk="url='file:///x.tar.gz', sha256='abc'",
        mentions=("'abc'", "sha256sum"),
    ),
    Case("url-without-sha256", "`url=` without `sha256=`", jdk="url='file:///x.tar.gz'", mentions=("sha256",)),
    Case(
        "jvm-option-malformed", '`jvm_options=["-Xmx512q"]`', {"jvm_options": ["-Xmx512q"]}, mentions=("-Xmx", "512q")
    ),
    Case(
        "limit-too-small",
        '`user_space_size="1GB"` for `-Xmx512m`',
        {"user_space_size": "1GB"},
        mentions=("1024MB", "1785MB"),
    ),
    Case(
        "threads-below-estimate",
        "`max_num_of_threads=16` with 64 Java threads",
        {"max_num_of_threads": 16},
        mentions=("16", "64"),
    ),
    Case(
        "occlum-release-unknown",
        '`[occlum].version = "0.19.0"`',
        options=("--occlum-version=0.19.0",),
        mentions=("'0.19.0'", "0.31.0"),
    ),
    Case(
        "occlum-release-near-miss",
        '`[occlum].version = "0.31"`',
        options=("--occlum-version=0.31",),
        mentions=("Did you mean 0.31.0?", 'version = "0.31.0"'),
    ),
    Case(
        "release-lacks-mounts",
        "`mounts` on Occlum 0.20.0",
        {"mounts": [{"target": "/data", "type": "ramfs"}]},
        options=("--occlum-version=0.20.0",),
        mentions=("0.20.0", "0.21.0"),
    ),
    Case(
        "jar-target-missing",
        '`jar=":nope"` (no such target)',
        {"jar": ":nope"},
        mentions=("':nope'", "`jar` field of svc:enclave", "does not name an existing target"),
    ),
    Case("jdk-bare-name", '`jdk="jdk"` (a directory, not a target)', {"jdk": "jdk"}, mentions=('jdk=":jdk"',)),
    Case(
        "jar-duplicate",
        "`jar` names a `files` target with two jars",
        {"jar": ":jars"},
        mentions=("a.jar", "b.jar", "exactly one"),
    ),
    Case(
        "jar-no-main-class", "a jar whose manifest has no `Main-Class`", setup="no_main_class", mentions=("Main-Class",)
    ),
    Case(
        "jar-too-new",
        "a jar compiled for Java 17 in a Java 11 image",
        setup="java17_jar",
        mentions=("Java 17", "11.0.16"),
    ),
    Case(
        "jar-main-class-missing",
        "a jar whose `Main-Class` names a class that is not in it",
        setup="main_class_missing",
        mentions=("app.Mian", "app/Mian.class"),
    ),
    Case(
        "jar-nested-too-new",
        "a Spring Boot jar with a nested dependency compiled for Java 17, in a Java 11 image",
        setup="boot_jar_java17_dependency",
        mentions=("BOOT-INF/lib/dep-1.0.jar", "Java 17", "com/dep/Dep.class"),
    ),
    Case(
        "dependency-lock-differs",
        "a `dependency_lock` that pins other bytes for one nested jar and lacks another",
        {"dependency_lock": "maven.lock"},
        setup="boot_jar_with_stale_lock",
        mentions=("BOOT-INF/lib/spring-core-5.3.31.jar: sha256", "dep-1.0.jar: in the jar, not in the lock"),
    ),
    Case(
        "dependency-lock-missing",
        '`dependency_lock="maven.lock"` naming no file',
        {"dependency_lock": "maven.lock"},
        mentions=("'maven.lock'", "no such file"),
    ),
    Case(
        "jar-too-large",
        "a service jar over the 1 GiB bound (lowered to 1000 bytes here, so the case needs no 1 GiB file)",
        setup="jar_over_the_size_bound",
        mentions=("more than the 1000 bytes", "`files` field"),
    ),
    Case(
        "max-size-on-old-release",
        "`user_space_max_size` with `[occlum].version` 0.29.7",
        {"user_space_max_size": "4GB"},
        options=("--occlum-version=0.29.7",),
        mentions=("user_space_max_size", "0.30.0", "0.29.7"),
    ),
    Case("jdk-wrong-libc", 'a glibc JDK declared `libc="musl"`', setup="glibc_jdk", mentions=("glibc", "musl")),
    Case(
        "dragonwell-version-unknown",
        '`version="11.0.99.1"`',
        jdk="version='11.0.99.1'",
        setup="table_only",
        mentions=("11.0.99.1", "11.0.16.12.8"),
    ),
    Case(
        "sha256-mismatch",
        "an archive whose sha256 differs from the pin",
        setup="sha_mismatch",
        mentions=("sha256 mismatch",),
    ),
    Case(
        "mirror-down",
        "every URL and mirror unreachable",
        setup="mirror_down",
        options=("--dragonwell-mirrors=['file:///srv/down/{filename}']",),
        mentions=("/srv/down/", "[dragonwell].mirrors"),
    ),
    Case(
        "known-versions-malformed",
        "a `[dragonwell].known_versions` entry with 3 fields",
        setup="table_only",
        options=("--dragonwell-known-versions=['11|standard|musl']",),
        mentions=("'11|standard|musl'",),
    ),
    Case("jdk-not-a-jdk", '`jdk=":app"` (a `file` target)', {"jdk": ":app"}, mentions=("svc:app", "dragonwell_jdk")),
    Case("archive-escapes", "a JDK archive with a `../` member", setup="hostile_archive", mentions=("..",)),
    # The bounds of the extraction and the download (jdk/extract_tool.py, jdk/fetch_tool.py), at their
    # real values: each archive is small, and the over-large download is a sparse file.
    Case(
        "archive-too-many-members",
        "a JDK archive of more than 20,000 members",
        setup="archive_many_members",
        mentions=("more than 20000 members",),
    ),
    Case(
        "archive-path-too-long",
        "a JDK archive member whose path is over 1024 bytes",
        setup="archive_long_path",
        mentions=("limit of 1024 bytes",),
    ),
    Case(
        "archive-too-deep",
        "a JDK archive member 71 folders deep",
        setup="archive_deep",
        mentions=("limit of 16", "Pants' engine crashes"),
    ),
    Case(
        "archive-sparse-member",
        "a JDK archive with a sparse member (GNU sparse, 100 GB)",
        setup="archive_sparse",
        mentions=("is a sparse file",),
    ),
    Case(
        "archive-dollar-name",
        "a JDK archive member named `lib/$ORIGIN.so`",
        setup="archive_dollar",
        mentions=("$ORIGIN.so", "copy_bom"),
    ),
    Case(
        "archive-name-not-utf8",
        "a JDK archive member whose name is not UTF-8",
        setup="archive_not_utf8",
        mentions=("not valid UTF-8",),
    ),
    Case(
        "archive-symlink-bomb",
        "a JDK archive of 31 nested symlinks (resolving the last walks 2^30 components)",
        setup="archive_symlink_bomb",
        mentions=("more than 40 symlinks",),
    ),
    Case(
        "archive-huge-header",
        "a JDK archive with a pax header over 1 MiB",
        setup="archive_big_header",
        mentions=("limit of 1048576 bytes",),
    ),
    Case(
        "download-over-the-cap",
        "a `url` pin without `size` whose file is 1 GiB + 1 byte",
        setup="download_over_cap",
        mentions=("1073741825 bytes", "1073741824"),
    ),
    Case(
        "files-collide",
        "`files` puts a file where the jar goes",
        {"files": {"/usr/lib/spring/app.jar": ":app"}},
        mentions=("/usr/lib/spring/app.jar",),
    ),
    Case(
        "no-toolchain",
        '`stage_only = "no"` and no `occlum` on the search path',
        setup="no_toolchain",
        mentions=("/nonexistent/bin", "stage_only"),
    ),
    Case(
        "toolchain-release-mismatch",
        'an Occlum 0.31.0 toolchain with `[occlum].version = "0.30.1"`',
        toolchain=True,
        options=("--occlum-version=0.30.1",),
        mentions=("0.31.0", "0.30.1"),
    ),
    Case(
        "sign-key-relative",
        '`[occlum].sign_key = "keys/k.pem"`',
        toolchain=True,
        options=("--occlum-sign-key=keys/k.pem",),
        mentions=("'keys/k.pem'",),
    ),
    Case(
        "release-with-template-key",
        "`debuggable=False` signed with Occlum's template key",
        {"debuggable": False},
        toolchain=True,
        mentions=("template key", "[occlum].sign_key"),
    ),
)

_EXC = re.compile(r"^(?:[\w.]+\.)?(\w+(?:Error|Exception)): ", re.M)


def user_message(error_text: str, tmp: str) -> str:
    """What the user reads: the last exception's message, without engine framing or temp paths."""
    matches = list(_EXC.finditer(error_text))
    text = error_text[matches[-1].end() :] if matches else error_text
    text = re.sub(r"^svc/BUILD:\d+: ", "", text.strip())
    return text.replace(tmp, "<tmp>").strip()


class _Env:
    """One case's sandbox: a repo with an app jar, a served JDK, maybe a toolchain double."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.served: ServedJdk = serve_fake_jdk(tmp / "mirror")
        self.cleanups: list[Callable[[], None]] = []  # undo what a special setup changed in-process

    def runner(self, case: Case) -> RuleRunner:
        rr = new_rule_runner(stage_only=not (case.toolchain or case.setup == "no_toolchain"))
        app = fake_jdk.make_jar(self.tmp / "app.jar", class_major=55)
        rr.write_files({"svc/app.jar": app.read_bytes(), "svc/a.jar": app.read_bytes(), "svc/b.jar": app.read_bytes()})
        pin = self.served.pin()
        opts = [f"--dragonwell-known-versions=['{pin}']"]
        jdk = case.jdk
        if case.setup:
            special: Callable[[RuleRunner, list], Optional[str]] = getattr(self, f"_setup_{case.setup}")
            jdk = special(rr, opts) or case.jdk
        if case.toolchain:
            from occlum_double.make_install import make_fake_occlum_install

            install = make_fake_occlum_install(self.tmp / "occlum", "0.31.0")
            opts += [f"--occlum-executable-search-paths=['{install / 'build' / 'bin'}']"]
            if not any(o.startswith("--occlum-version") for o in case.options):
                opts.append("--occlum-version=0.31.0")
        opts = [o for o in opts if not any(o.split("=")[0] == c.split("=")[0] for c in case.options)]
        rr.set_options([*opts, *case.options], env_inherit={"PATH"})
        image = {"name": "enclave", "jdk": ":jdk", "jar": ":app", **case.image}
        image = {k: v for k, v in image.items() if v is not None}
        rr.write_files(
            {
                "svc/BUILD": (
                    f"dragonwell_jdk(name='jdk'{', ' + jdk if jdk else ''})\n"
                    "file(name='app', source='app.jar')\n"
                    "files(name='jars', sources=['a.jar', 'b.jar'])\n"
                    f"occlum_java_image({', '.join(f'{k}={v!r}' for k, v in image.items())})\n"
                )
            }
        )
        return rr

    # Special setups return the dragonwell_jdk(...) arguments and may add options or files.
    def _setup_no_main_class(self, rr: RuleRunner, opts: list) -> str:
        rr.write_files({"svc/app.jar": fake_jdk.make_jar(self.tmp / "nomain.jar", main_class=None).read_bytes()})
        return ""

    def _setup_java17_jar(self, rr: RuleRunner, opts: list) -> str:
        rr.write_files({"svc/app.jar": fake_jdk.make_jar(self.tmp / "j17.jar", class_major=61).read_bytes()})
        return ""

    def _setup_jar_over_the_size_bound(self, rr: RuleRunner, opts: list) -> str:
        from occlum.jar import inspect_jar

        real = inspect_jar.MAX_JAR_BYTES
        inspect_jar.MAX_JAR_BYTES = 1000
        self.cleanups.append(lambda: setattr(inspect_jar, "MAX_JAR_BYTES", real))
        big = fake_jdk.make_jar(self.tmp / "big.jar", extra_entries=[("data.bin", bytes(range(256)) * 8)])
        rr.write_files({"svc/app.jar": big.read_bytes()})
        return ""

    def _setup_main_class_missing(self, rr: RuleRunner, opts: list) -> str:
        jar = fake_jdk.make_jar(self.tmp / "typo.jar", manifest="Main-Class: app.Mian\r\n\r\n")
        rr.write_files({"svc/app.jar": jar.read_bytes()})
        return ""

    def _setup_boot_jar_java17_dependency(self, rr: RuleRunner, opts: list) -> str:
        import java_jars

        jar = java_jars.spring_boot_jar(self.tmp / "boot.jar", libs={"spring-core-5.3.31.jar": 8, "dep-1.0.jar": 17})
        rr.write_files({"svc/app.jar": jar.read_bytes()})
        return ""

    def _setup_boot_jar_with_stale_lock(self, rr: RuleRunner, opts: list) -> str:
        import hashlib
        import zipfile

        import java_jars

        jar = java_jars.spring_boot_jar(self.tmp / "boot.jar", libs={"spring-core-5.3.31.jar": 8, "dep-1.0.jar": 8})
        with zipfile.ZipFile(jar) as z:
            core = z.read("BOOT-INF/lib/spring-core-5.3.31.jar")
        stale = hashlib.sha256(core + b"as it was last reviewed").hexdigest()
        rr.write_files({"svc/app.jar": jar.read_bytes(), "svc/maven.lock": f"{stale}  spring-core-5.3.31.jar\n"})
        return ""

    def _setup_glibc_jdk(self, rr: RuleRunner, opts: list) -> str:
        glibc = serve_fake_jdk(self.tmp / "glibc", name="glibc.tar.gz", libc="glibc")
        return f"url={glibc.url!r}, sha256={glibc.sha256!r}"

    def _setup_table_only(self, rr: RuleRunner, opts: list) -> None:
        opts.clear()  # the default table of real pins (or the case's own option)
        return None

    def _setup_sha_mismatch(self, rr: RuleRunner, opts: list) -> str:
        return f"url={self.served.url!r}, sha256={'0' * 64!r}"

    def _setup_mirror_down(self, rr: RuleRunner, opts: list) -> str:
        return f"url='file:///srv/down-vendor/jdk.tar.gz', sha256={self.served.sha256!r}"

    def _setup_hostile_archive(self, rr: RuleRunner, opts: list) -> str:
        bad = serve_fake_jdk(
            self.tmp / "hostile", name="evil.tar.gz", extra_members=(fake_jdk.TarMember("../evil", data=b"x"),)
        )
        return f"url={bad.url!r}, sha256={bad.sha256!r}"

    def _hostile(self, name: str, *members: fake_jdk.TarMember) -> str:
        bad = serve_fake_jdk(self.tmp / name.split(".")[0], name=name, extra_members=members)
        return f"url={bad.url!r}, sha256={bad.sha256!r}"

    def _setup_archive_many_members(self, rr: RuleRunner, opts: list) -> str:
        return self._hostile("many.tar.gz", *(fake_jdk.TarMember(f"many/f{i}") for i in range(20_001)))

    def _setup_archive_long_path(self, rr: RuleRunner, opts: list) -> str:
        return self._hostile("long.tar.gz", fake_jdk.TarMember(("d" * 200 + "/") * 5 + "f", data=b"x"))

    def _setup_archive_deep(self, rr: RuleRunner, opts: list) -> str:
        return self._hostile("deep.tar.gz", fake_jdk.TarMember("d/" * 70 + "f", data=b"x"))

    def _setup_archive_sparse(self, rr: RuleRunner, opts: list) -> str:
        pax = (("GNU.sparse.map", "0,0"), ("GNU.sparse.size", str(100 * 1024**3)))
        return self._hostile("sparse.tar.gz", fake_jdk.TarMember("lib/modules", pax=pax))

    def _setup_archive_dollar(self, rr: RuleRunner, opts: list) -> str:
        return self._hostile("dollar.tar.gz", fake_jdk.TarMember("lib/$ORIGIN.so", data=b"x"))

    def _setup_archive_not_utf8(self, rr: RuleRunner, opts: list) -> str:
        return self._hostile("latin1.tar.gz", fake_jdk.TarMember("lib/caf\udce9.so", data=b"x"))

    def _setup_archive_symlink_bomb(self, rr: RuleRunner, opts: list) -> str:
        links = [fake_jdk.TarMember("nest/l0", kind="symlink", linkname=".")]
        links += [fake_jdk.TarMember(f"nest/l{i}", kind="symlink", linkname=f"l{i - 1}/l{i - 1}") for i in range(1, 31)]
        return self._hostile("bomb.tar.gz", *links)

    def _setup_archive_big_header(self, rr: RuleRunner, opts: list) -> str:
        # Over 1 MiB of text that gzip cannot shrink (or the compression-ratio check would refuse it first).
        noise = random.Random(0).randbytes(1024**2 // 2 + 1).hex()
        return self._hostile("header.tar.gz", fake_jdk.TarMember("lib/x", data=b"x", pax=(("comment", noise),)))

    def _setup_download_over_cap(self, rr: RuleRunner, opts: list) -> str:
        big = self.tmp / "big" / "jdk.tar.gz"
        big.parent.mkdir()
        with open(big, "wb") as f:
            f.truncate(1024**3 + 1)  # sparse: no disk used, and the fetch refuses it before reading
        return f"url='file://{big}', sha256={'0' * 64!r}"

    def _setup_no_toolchain(self, rr: RuleRunner, opts: list) -> str:
        opts += ["--occlum-executable-search-paths=['/nonexistent/bin']", "--occlum-stage-only=no"]
        return ""


def run_case(case: Case) -> str:
    """Run one case and return the normalised message the user sees (raises if no error)."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        env = _Env(tmp)
        try:
            rr = env.runner(case)
            try:
                rr.get_target(ADDR)
                package_image(rr, ADDR)
            except Exception as e:  # the error under test
                return user_message(str(e), d)
        finally:
            for undo in env.cleanups:
                undo()
        raise AssertionError(f"catalogue case {case.id} did not fail")


def render_doc(messages: dict) -> str:
    lines = [
        "# Error catalogue",
        "",
        "Every wrong input the plugin refuses, and the whole message the user gets (generated by",
        "`build-support/gen-error-catalogue` from `tests/error_catalogue.py`; `tests/error_catalogue_test.py`",
        "fails when a message changes without this file). `<tmp>` stands for a temporary path. No case",
        "prints a Python traceback, and none leaves anything in `dist/`. Every message is the backend's",
        "own, so it reads the same on every Pants release the backend supports.",
        "",
    ]
    for i, case in enumerate(CASES, 1):
        lines += [f"## {i}. `{case.id}`: {case.what}", "", "```", messages[case.id], "```", ""]
    return "\n".join(lines)


def parse_doc(text: str) -> dict:
    out = {}
    for m in re.finditer(r"^## \d+\. `([^`]+)`: .*?\n\n```\n(.*?)\n```", text, re.M | re.S):
        out[m.group(1)] = m.group(2)
    return out
