"""BUILD-level validation of the `occlum_java_image` and `dragonwell_jdk` fields: what a bad value
says (target, field, value, what is allowed or how to fix it) and which boundary values pass."""

from __future__ import annotations

import pytest
from pants.engine.addresses import Address
from pants.engine.target import Field, Target
from pants.testutil.rule_runner import RuleRunner

from occlum.config.model import Mount
from occlum.config.sizes import MB
from occlum.target_types import (
    MAX_FILES_ENTRIES,
    DragonwellJdkTarget,
    DragonwellSha256Field,
    DragonwellSizeField,
    DragonwellUrlField,
    OcclumJavaImageEnvField,
    OcclumJavaImageFilesField,
    OcclumJavaImageJarDirField,
    OcclumJavaImageJdkDirField,
    OcclumJavaImageMaxNumOfThreadsField,
    OcclumJavaImageMountsField,
    OcclumJavaImageProductIdField,
    OcclumJavaImageTarget,
    OcclumJavaImageUntrustedEnvField,
    OcclumJavaImageUserSpaceSizeField,
    OcclumJavaImageVersionNumberField,
)
from occlum_testutil import new_rule_runner

ADDR = Address("svc", target_name="enclave")
SHA = "0123456789abcdef" * 4
SIZE_GRAMMAR = (
    'an integer followed by a case-sensitive binary unit KB, MB, GB, TB or B (1KB = 1024 bytes), e.g. "256MB"'
)


@pytest.fixture(scope="module")
def rule_runner() -> RuleRunner:
    # Only BUILD files are parsed here; one runner serves the whole module.
    return new_rule_runner()


def _build_args(fields: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in fields.items())


def image_target(rr: RuleRunner, **fields: object) -> Target:
    args = {"name": "enclave", "jdk": ":jdk", "jar": ":app", **fields}
    args = {k: v for k, v in args.items() if v is not _OMIT}
    rr.write_files({"svc/BUILD": f"occlum_java_image({_build_args(args)})\n"})
    return rr.get_target(ADDR)


def jdk_target(rr: RuleRunner, **fields: object) -> Target:
    rr.write_files({"svc/BUILD": f"dragonwell_jdk({_build_args({'name': 'enclave', **fields})})\n"})
    return rr.get_target(ADDR)


def image_error(rr: RuleRunner, **fields: object) -> str:
    with pytest.raises(Exception) as exc:
        image_target(rr, **fields)
    return str(exc.value)


def jdk_error(rr: RuleRunner, **fields: object) -> str:
    with pytest.raises(Exception) as exc:
        jdk_target(rr, **fields)
    return str(exc.value)


class _Omit:
    def __repr__(self) -> str:
        return "<omitted>"


_OMIT = _Omit()


# ---------------------------------------------------------------------------------------------
# occlum_java_image: rejected values
# ---------------------------------------------------------------------------------------------

# (fields, the message fragments that must all appear). Every message names svc:enclave.
IMAGE_ERRORS = [
    # Sizes: Occlum's parser, with a hint for the usual mistake.
    pytest.param(
        {"user_space_size": "256mb"},
        [
            "The `user_space_size` field in target svc:enclave must be an Occlum size such as "
            "\"1680MB\", but was '256mb'",
            "units are case-sensitive (write 'MB', not 'mb')",
            SIZE_GRAMMAR,
        ],
        id="size-lowercase-unit",
    ),
    pytest.param(
        {"user_space_size": "1.5GB"},
        [
            "The `user_space_size` field in target svc:enclave",
            "but was '1.5GB'",
            "whose number '1.5' is not a whole number; fractions are not allowed, use a smaller unit",
        ],
        id="size-fraction",
    ),
    pytest.param(
        {"user_space_size": "256M"},
        [
            "The `user_space_size` field in target svc:enclave",
            "but was '256M'",
            "the unit needs a trailing B (write 'MB')",
        ],
        id="size-unit-without-B",
    ),
    pytest.param(
        {"user_space_size": "MB"},
        ["The `user_space_size` field in target svc:enclave", "but was 'MB'", "the number is missing", SIZE_GRAMMAR],
        id="size-no-number",
    ),
    pytest.param(
        {"user_space_size": "256KiB"},
        [
            "The `user_space_size` field in target svc:enclave",
            "but was '256KiB'",
            "units are already binary; write 'KB', not 'KiB'",
        ],
        id="size-KiB",
    ),
    pytest.param(
        {"user_space_size": 256},
        [
            'The `user_space_size` field in target svc:enclave must be a size string such as "1680MB", '
            "but was the number 256. Occlum reads sizes as strings with a unit: KB, MB, GB"
        ],
        id="size-bare-number",
    ),
    pytest.param(
        {"kernel_space_heap_size": "bogus"},
        [
            'The `kernel_space_heap_size` field in target svc:enclave must be an Occlum size such as "64MB", '
            "but was 'bogus'",
            "has no recognised unit",
            SIZE_GRAMMAR,
        ],
        id="kernel-heap-bogus",
    ),
    pytest.param(
        {"default_mmap_size": "1400 mb"},
        ["The `default_mmap_size` field in target svc:enclave", "but was '1400 mb'", "units are case-sensitive"],
        id="mmap-lowercase-unit",
    ),
    # Threads and the 16-bit SGX fields.
    pytest.param(
        {"max_num_of_threads": 0},
        [
            "The `max_num_of_threads` field in target svc:enclave must be a whole number from 1 to 4096 "
            "(each thread costs an SGX TCS and a kernel stack), but was 0."
        ],
        id="threads-zero",
    ),
    pytest.param(
        {"max_num_of_threads": -1},
        [
            "The `max_num_of_threads` field in target svc:enclave must be a whole number from 1 to 4096 "
            "(each thread costs an SGX TCS and a kernel stack), but was -1."
        ],
        id="threads-negative",
    ),
    pytest.param(
        {"java_threads": 4097},
        [
            "The `java_threads` field in target svc:enclave must be a whole number from 1 to 4096 (each "
            "thread costs an SGX TCS and a kernel stack), but was 4097."
        ],
        id="java-threads-too-many",
    ),
    pytest.param(
        {"max_num_of_threads": "8"},
        [
            "The `max_num_of_threads` field in target svc:enclave must be a whole number from 1 to 4096, but "
            "was '8' (str)."
        ],
        id="threads-a-string",
    ),
    pytest.param(
        {"child_processes": 257},
        ["The `child_processes` field in target svc:enclave must be a whole number from 0 to 256", "but was 257."],
        id="child-processes-too-many",
    ),
    pytest.param(
        {"memory_headroom": 101},
        [
            "The `memory_headroom` field in target svc:enclave must be a whole number from 0 to 100 "
            "(percent), but was 101."
        ],
        id="memory-headroom-too-big",
    ),
    pytest.param(
        {"product_id": 70000},
        [
            "The `product_id` field in target svc:enclave must be a whole number from 0 to 65535 "
            "(an SGX 16-bit field), but was 70000."
        ],
        id="product-id-too-big",
    ),
    pytest.param(
        {"product_id": -1},
        [
            "The `product_id` field in target svc:enclave must be a whole number from 0 to 65535 (an SGX "
            "16-bit field), but was -1."
        ],
        id="product-id-negative",
    ),
    pytest.param(
        {"version_number": 65536},
        [
            "The `version_number` field in target svc:enclave must be a whole number from 0 to 65535 "
            "(an SGX 16-bit field), but was 65536."
        ],
        id="version-number-too-big",
    ),
    # env / untrusted_env.
    pytest.param(
        {"env": ["FOO"]},
        [
            "The `env` field in target svc:enclave must hold `KEY=VALUE` entries with KEY a variable name, "
            "but has 'FOO'. Write it as e.g. \"FOO=value\"."
        ],
        id="env-no-equals",
    ),
    pytest.param(
        {"env": ["1X=y"]},
        [
            "The `env` field in target svc:enclave must hold `KEY=VALUE` entries with KEY a variable name, "
            "but has '1X=y'. KEY must start with a letter or _ and hold only letters, digits and _."
        ],
        id="env-bad-name",
    ),
    pytest.param(
        {"env": ["A=1", "B=2", "A=3"]},
        ["The `env` field in target svc:enclave sets A twice ('A=1' and 'A=3'). Keep one."],
        id="env-duplicate-key",
    ),
    pytest.param(
        {"untrusted_env": ["PORT=80"]},
        [
            "The `untrusted_env` field in target svc:enclave must hold variable names (letters, digits, _), "
            "but has 'PORT=80'. Use just 'PORT'; values come from the host."
        ],
        id="untrusted-env-with-value",
    ),
    pytest.param(
        {"untrusted_env": ["PORT", "HOST", "PORT"]},
        ["The `untrusted_env` field in target svc:enclave lists a name twice: ['HOST', 'PORT', 'PORT']."],
        id="untrusted-env-duplicate",
    ),
    # mounts.
    pytest.param(
        {"mounts": [{"target": "data", "type": "hostfs", "source": "./data"}]},
        [
            "The `mounts` field in target svc:enclave, entry 0 needs `target` to be an absolute path in the enclave",
            "but was 'data'. Write e.g. \"/data\".",
        ],
        id="mount-relative-target",
    ),
    pytest.param(
        {"mounts": [{"target": "/data/../host", "type": "ramfs"}]},
        [
            "The `mounts` field in target svc:enclave, entry 0 needs `target` to be an absolute path in the enclave "
            "(no `.` or `..`), but was '/data/../host'."
        ],
        id="mount-dotdot-target",
    ),
    pytest.param(
        {"mounts": [{"target": "/data/./x", "type": "ramfs"}]},
        ["entry 0 needs `target` to be an absolute path in the enclave (no `.` or `..`), but was '/data/./x'."],
        id="mount-dot-target",
    ),
    pytest.param(
        {"mounts": [{"target": "/data", "type": "sefs", "source": "./s", "options": {"MAC": "x"}}]},
        [
            "The `mounts` field in target svc:enclave, entry 0 has options ['MAC'], which a sefs mount does not "
            "take; allowed: cache_size, temporary."
        ],
        id="mount-option-unknown",
    ),
    pytest.param(
        {"mounts": [{"target": "/data", "type": "sefs", "source": "./s", "options": {"temporary": "true"}}]},
        [
            "The `mounts` field in target svc:enclave, entry 0 needs `options.temporary` to be True or False, "
            "but was 'true'."
        ],
        id="mount-option-temporary-string",
    ),
    pytest.param(
        {"mounts": [{"target": "/data", "type": "sefs", "source": "./s", "options": {"cache_size": "bogus"}}]},
        [
            "The `mounts` field in target svc:enclave, entry 0 needs `options.cache_size` to be a size string "
            "such as \"1MB\" of whole 4KB pages, at least 192KB, but was 'bogus': found 'bogus'"
        ],
        id="mount-option-cache-size-bogus",
    ),
    pytest.param(
        {"mounts": [{"target": "/data", "type": "ramfs"}, {"target": "/data/", "type": "ramfs"}]},
        [
            "The `mounts` field in target svc:enclave mounts ['/data'] more than once. "
            "Each target path may be mounted once."
        ],
        id="mount-duplicate-target",
    ),
    pytest.param(
        {"mounts": [{"target": "/", "type": "ramfs"}]},
        [
            "The `mounts` field in target svc:enclave, entry 0 mounts '/', which Occlum mounts itself "
            "(/, /host, /proc, /dev). Pick another path."
        ],
        id="mount-root",
    ),
    pytest.param(
        {"mounts": [{"target": "//", "type": "ramfs"}]},
        ["The `mounts` field in target svc:enclave, entry 0 mounts '//', which Occlum mounts itself"],
        id="mount-root-double-slash",
    ),
    pytest.param(
        {"mounts": [{"target": "/tmp", "type": "ramfs"}, {"target": "/host", "type": "hostfs", "source": "."}]},
        [
            "The `mounts` field in target svc:enclave, entry 1 mounts '/host', which Occlum mounts itself "
            "(/, /host, /proc, /dev). Pick another path."
        ],
        id="mount-host",
    ),
    pytest.param(
        {"mounts": [{"target": "//host/", "type": "hostfs", "source": "."}]},
        ["entry 0 mounts '//host/', which Occlum mounts itself"],
        id="mount-host-extra-slashes",
    ),
    pytest.param(
        {"mounts": [{"target": "/data", "type": "nfs", "source": "srv:/x"}]},
        ["The `mounts` field in target svc:enclave, entry 0 has type 'nfs'; allowed: hostfs, sefs, ramfs."],
        id="mount-unknown-type",
    ),
    pytest.param(
        {"mounts": [{"target": "/data", "type": "hostfs"}]},
        [
            "The `mounts` field in target svc:enclave, entry 0 is a hostfs, which needs `source` "
            '(a host path such as "./data").'
        ],
        id="mount-hostfs-without-source",
    ),
    pytest.param(
        {"mounts": [{"target": "/tmp", "type": "ramfs", "source": "./tmp"}]},
        ["The `mounts` field in target svc:enclave, entry 0 is a ramfs, which takes no `source`; remove it."],
        id="mount-ramfs-with-source",
    ),
    pytest.param(
        {"mounts": [{"target": "/data", "type": "hostfs", "source": ".", "readonly": True}]},
        [
            "The `mounts` field in target svc:enclave, entry 0 has unknown keys ['readonly']; "
            "allowed: target, type, source, options."
        ],
        id="mount-unknown-key",
    ),
    pytest.param(
        {"mounts": [{"target": "/data", "type": "sefs", "source": "./d", "options": {"MAC": 1}}]},
        [
            "The `mounts` field in target svc:enclave, entry 0 needs `options` to be a dict of strings or booleans "
            "(e.g. {\"temporary\": True}), but was {'MAC': 1}."
        ],
        id="mount-options-not-strings",
    ),
    pytest.param(
        {"mounts": [{"target": "/data", "type": "sefs", "source": "./d", "options": "ro"}]},
        [
            "The `mounts` field in target svc:enclave, entry 0 needs `options` to be a dict of strings or booleans "
            "(e.g. {\"temporary\": True}), but was 'ro'."
        ],
        id="mount-options-not-dict",
    ),
    pytest.param(
        {"mounts": ["/data"]},
        ["The `mounts` field in target svc:enclave, entry 0 must be a dict with `target` and `type`, but was '/data'."],
        id="mount-entry-not-dict",
    ),
    pytest.param(
        {"mounts": {"target": "/data", "type": "ramfs"}},
        [
            "The `mounts` field in target svc:enclave must be a list of dicts, but was {'target': '/data', "
            "'type': 'ramfs'} (dict)."
        ],
        id="mounts-not-a-list",
    ),
    # files.
    pytest.param(
        {"files": {"etc/app.yaml": ":config"}},
        [
            "The `files` field in target svc:enclave has the enclave path 'etc/app.yaml', which is not absolute; "
            'it must start with `/`. Map absolute file paths, e.g. {"/etc/app/application.yaml": ":config"}.'
        ],
        id="files-relative-path",
    ),
    pytest.param(
        {"files": {"/etc/../root/x": ":config"}},
        [
            "The `files` field in target svc:enclave has the enclave path "
            "'/etc/../root/x', which has a `.` or `..` component"
        ],
        id="files-dotdot",
    ),
    pytest.param(
        {"files": {"/etc/app/": ":config"}},
        [
            "The `files` field in target svc:enclave has the enclave path "
            "'/etc/app/', which ends with `/`; name the file itself."
        ],
        id="files-trailing-slash",
    ),
    pytest.param(
        {"files": {"/.": ":config"}},
        ["The `files` field in target svc:enclave has the enclave path '/.', which has a `.` or `..` component"],
        id="files-root-dot",
    ),
    pytest.param(
        {"files": {"/etc/.": ":config"}},
        ["The `files` field in target svc:enclave has the enclave path '/etc/.', which has a `.` or `..` component"],
        id="files-dir-dot",
    ),
    pytest.param(
        {"files": {"/etc/a\x00b": ":config"}},
        [
            "The `files` field in target svc:enclave has the enclave path "
            "'/etc/a\\x00b', which holds the control character '\\x00'."
        ],
        id="files-nul",
    ),
    pytest.param(
        {"files": {"/etc/" + "a" * 256: ":config"}},
        [
            "The `files` field in target svc:enclave has the enclave path '/etc/aaaa",
            "which has the component",
            "of 256 bytes; at most 255 are allowed.",
        ],
        id="files-component-too-long",
    ),
    pytest.param(
        {"files": {"/etc/" + "a/" * 600 + "x": ":config"}},
        ["which is 1206 bytes long; at most 1024 are allowed."],
        id="files-path-too-long",
    ),
    pytest.param(
        {"files": {"/etc/$HOME/x": ":config"}},
        [
            "The `files` field in target svc:enclave has the enclave path "
            "'/etc/$HOME/x', which holds `$`, which Occlum's copy_bom expands as a variable in every path."
        ],
        id="files-dollar",
    ),
    pytest.param(
        {"files": {"/etc/\udcff.yml": ":config"}},
        ["which holds characters that are not valid UTF-8; Occlum's tools read paths as UTF-8."],
        id="files-not-utf8",
    ),
    pytest.param(
        {"files": {"/etc/x": ":config", "/etc//x": ":config"}},
        ["The `files` field in target svc:enclave names the enclave path /etc/x twice (as '/etc/x' and '/etc//x')."],
        id="files-same-path-twice",
    ),
    # jdk_dir / jar_dir.
    pytest.param(
        {"jdk_dir": "relative"},
        [
            "The `jdk_dir` field in target svc:enclave is 'relative', which is not absolute; it must start with `/`. "
            'It must be an absolute folder in the enclave other than `/`, e.g. "/opt/app".'
        ],
        id="jdk-dir-relative",
    ),
    pytest.param(
        {"jdk_dir": "/"},
        ["The `jdk_dir` field in target svc:enclave is '/', which is the image root; name a folder under it."],
        id="jdk-dir-root",
    ),
    pytest.param(
        {"jdk_dir": "//"},
        ["The `jdk_dir` field in target svc:enclave is '//', which is the image root"],
        id="jdk-dir-double-slash-root",
    ),
    pytest.param(
        {"jdk_dir": "/."},
        ["The `jdk_dir` field in target svc:enclave is '/.', which has a `.` or `..` component"],
        id="jdk-dir-root-dot",
    ),
    pytest.param(
        {"jar_dir": "/usr/../etc"},
        ["The `jar_dir` field in target svc:enclave is '/usr/../etc', which has a `.` or `..` component"],
        id="jar-dir-dotdot",
    ),
    pytest.param(
        {"jar_dir": "/."},
        ["The `jar_dir` field in target svc:enclave is '/.', which has a `.` or `..` component"],
        id="jar-dir-root-dot",
    ),
    pytest.param(
        {"jar_dir": "//"},
        ["The `jar_dir` field in target svc:enclave is '//', which is the image root"],
        id="jar-dir-double-slash-root",
    ),
    # output_path.
    pytest.param(
        {"output_path": "../../x"},
        [
            "The `output_path` field in target svc:enclave is '../../x', which has a `.` or `..` component; write "
            'the path without them. Write a relative path under dist/, e.g. "svc/enclave".'
        ],
        id="output-path-climbs",
    ),
    pytest.param(
        {"output_path": "/srv/out"},
        ["The `output_path` field in target svc:enclave is '/srv/out', which is absolute"],
        id="output-path-absolute",
    ),
    # Required fields.
    pytest.param(
        {"jdk": _OMIT},
        [
            "The `occlum_java_image` target svc:enclave has no `jdk` field; it needs the address of a "
            '`dragonwell_jdk` target, e.g. jdk=":jdk".'
        ],
        id="missing-jdk",
    ),
    pytest.param(
        {"jar": _OMIT},
        [
            "The `occlum_java_image` target svc:enclave has no `jar` field; it needs the address of the target "
            "that yields the service's jar"
        ],
        id="missing-jar",
    ),
]


_D17 = "/" + "/".join(f"d{i}" for i in range(17))
_D16 = "/" + "/".join(f"d{i}" for i in range(16))
IMAGE_ERRORS += [
    # Depth: past these, Pants' engine crashes copying the digest (docs/security.md).
    pytest.param(
        {"files": {_D17: ":cfg"}},
        ["The `files` field in target svc:enclave has the enclave path", "has 17 components; at most 16 are allowed"],
        id="files-key-too-deep",
    ),
    pytest.param(
        {"jdk_dir": _D16},
        ["The `jdk_dir` field in target svc:enclave is", "has 16 components; at most 15 are allowed"],
        id="jdk_dir-too-deep",
    ),
    pytest.param(
        {"jar_dir": _D16},
        ["The `jar_dir` field in target svc:enclave is", "has 16 components; at most 15 are allowed"],
        id="jar_dir-too-deep",
    ),
    pytest.param(
        {"output_path": "a/b/c/d/e/f/g/h/i"},
        ["The `output_path` field in target svc:enclave is", "has 9 components; at most 8 are allowed under dist/"],
        id="output_path-too-deep",
    ),
    pytest.param(
        {"mounts": [{"target": _D17, "type": "ramfs"}]},
        ["The `mounts` field in target svc:enclave, entry 0", "has 17 components; at most 16 are allowed"],
        id="mount-target-too-deep",
    ),
    # Names that display as other names.
    pytest.param(
        {"files": {"/etc/app\u202egpj.yml": ":cfg"}},
        ["The `files` field in target svc:enclave", "RIGHT-TO-LEFT OVERRIDE (U+202E)"],
        id="files-key-rlo",
    ),
    pytest.param(
        {"output_path": "svc/en\u200bclave"},
        ["The `output_path` field in target svc:enclave", "ZERO WIDTH SPACE (U+200B)"],
        id="output_path-zero-width",
    ),
    pytest.param(
        {"jdk_dir": "/usr/lib\u2215jvm"},
        ["The `jdk_dir` field in target svc:enclave", "DIVISION SLASH (U+2215), which looks like `/`"],
        id="jdk_dir-division-slash",
    ),
]


@pytest.mark.parametrize("fields, fragments", IMAGE_ERRORS)
def test_image_field_rejects(rule_runner: RuleRunner, fields: dict, fragments: list) -> None:
    msg = image_error(rule_runner, **fields)
    assert "svc/BUILD:1" in msg
    for fragment in fragments:
        assert fragment in msg


# ---------------------------------------------------------------------------------------------
# occlum_java_image: accepted values, and what the field makes of them
# ---------------------------------------------------------------------------------------------


def test_defaults(rule_runner: RuleRunner) -> None:
    tgt = image_target(rule_runner)
    assert isinstance(tgt, OcclumJavaImageTarget)
    # Unset limits are derived from jvm_options by the sizing model (docs/memory-sizing.md).
    assert tgt[OcclumJavaImageUserSpaceSizeField].value is None
    assert tgt[OcclumJavaImageUserSpaceSizeField].bytes is None
    assert tgt[OcclumJavaImageMaxNumOfThreadsField].value is None
    assert tgt[OcclumJavaImageProductIdField].value == 0
    assert tgt[OcclumJavaImageVersionNumberField].value == 0
    assert tgt[OcclumJavaImageEnvField].value == ()
    assert tgt[OcclumJavaImageMountsField].value == ()
    assert tgt[OcclumJavaImageJdkDirField].value is None
    assert tgt[OcclumJavaImageJarDirField].value == "/usr/lib/spring"


@pytest.mark.parametrize(
    "raw, expected_bytes",
    [
        pytest.param(" 256 MB ", 256 * MB, id="spaces-around-and-before-unit"),
        pytest.param("+256MB", 256 * MB, id="leading-plus"),
        pytest.param("1GB", 1024 * MB, id="GB"),
        pytest.param("262144KB", 256 * MB, id="KB"),
        pytest.param("268435456B", 256 * MB, id="bytes"),
    ],
)
def test_size_forms_occlum_accepts(rule_runner: RuleRunner, raw: str, expected_bytes: int) -> None:
    field = image_target(rule_runner, user_space_size=raw)[OcclumJavaImageUserSpaceSizeField]
    # The BUILD value is kept as written; the bytes are what Occlum would read.
    assert field.value == raw
    assert field.bytes == expected_bytes


@pytest.mark.parametrize(
    "field_type, alias, value",
    [
        pytest.param(OcclumJavaImageProductIdField, "product_id", 65535, id="product-id-max"),
        pytest.param(OcclumJavaImageProductIdField, "product_id", 0, id="product-id-zero"),
        pytest.param(OcclumJavaImageVersionNumberField, "version_number", 65535, id="version-number-max"),
        pytest.param(OcclumJavaImageMaxNumOfThreadsField, "max_num_of_threads", 1, id="threads-one"),
    ],
)
def test_integer_boundaries_accepted(rule_runner: RuleRunner, field_type: type[Field], alias: str, value: int) -> None:
    assert image_target(rule_runner, **{alias: value})[field_type].value == value


def test_env_and_untrusted_env_accepted(rule_runner: RuleRunner) -> None:
    tgt = image_target(rule_runner, env=["_X=1", "JAVA_OPTS=-Da=b=c", "EMPTY="], untrusted_env=["PORT", "_HOST2"])
    # A value may hold `=` and may be empty; only the name is checked.
    assert tgt[OcclumJavaImageEnvField].value == ("_X=1", "JAVA_OPTS=-Da=b=c", "EMPTY=")
    assert tgt[OcclumJavaImageUntrustedEnvField].value == ("PORT", "_HOST2")


def test_mounts_accepted_and_normalised(rule_runner: RuleRunner) -> None:
    tgt = image_target(
        rule_runner,
        mounts=[
            {"target": "/data/", "type": "hostfs", "source": "./data"},
            {"target": "/tmp", "type": "ramfs"},
            {
                "target": "//secure//",
                "type": "sefs",
                "source": "./s",
                "options": {"temporary": True, "cache_size": "1MB"},
            },
            {"target": "/hostdata", "type": "hostfs", "source": "/srv"},  # only /host itself is reserved
        ],
    )
    assert tgt[OcclumJavaImageMountsField].value == (
        Mount("/data", "hostfs", "./data", ()),
        Mount("/tmp", "ramfs", None, ()),
        Mount("/secure", "sefs", "./s", (("cache_size", 1024 * 1024), ("temporary", True))),
        Mount("/hostdata", "hostfs", "/srv", ()),
    )


def test_paths_at_the_depth_bounds_are_accepted(rule_runner: RuleRunner) -> None:
    tgt = image_target(
        rule_runner,
        files={_D16: ":cfg"},
        jdk_dir=_D16.rsplit("/", 1)[0],
        jar_dir=_D16.rsplit("/", 1)[0],
        output_path="a/b/c/d/e/f/g/h",
        mounts=[{"target": _D16, "type": "ramfs"}],
    )
    assert list(tgt[OcclumJavaImageFilesField].value or {}) == [_D16]
    assert tgt[OcclumJavaImageJdkDirField].value == tgt[OcclumJavaImageJarDirField].value == _D16.rsplit("/", 1)[0]


def test_files_entry_count_bound(rule_runner: RuleRunner) -> None:
    at_bound = {f"/srv/f{i}": ":cfg" for i in range(MAX_FILES_ENTRIES)}
    assert len(image_target(rule_runner, files=at_bound)[OcclumJavaImageFilesField].value or {}) == MAX_FILES_ENTRIES
    over = {**at_bound, "/srv/one-more": ":cfg"}
    msg = image_error(rule_runner, files=over)
    assert f"The `files` field in target svc:enclave has {MAX_FILES_ENTRIES + 1} entries; at most 20000" in msg
    assert "Put many files into one archive or into the jar" in msg


def test_files_and_dirs_accepted(rule_runner: RuleRunner) -> None:
    tgt = image_target(
        rule_runner, files={"/etc/app/application.yaml": ":config", "/a..b": ":x"}, jdk_dir="/opt/jdk/", jar_dir="/srv"
    )
    assert dict(tgt[OcclumJavaImageFilesField].value or {}) == {"/etc/app/application.yaml": ":config", "/a..b": ":x"}
    assert tgt[OcclumJavaImageJdkDirField].value == "/opt/jdk"  # trailing slash dropped
    assert tgt[OcclumJavaImageJarDirField].value == "/srv"


# ---------------------------------------------------------------------------------------------
# dragonwell_jdk
# ---------------------------------------------------------------------------------------------

JDK_ERRORS = [
    pytest.param(
        {"edition": "enterprise"},
        [
            "The `edition` field in target svc:enclave must be `standard` or `extended`, but was 'enterprise'. "
            "Leave it unset for releases that have no editions (before 11.0.16)."
        ],
        id="edition-unknown",
    ),
    pytest.param(
        {"libc": "uclibc"},
        [
            "The `libc` field in target svc:enclave must be `musl` or `glibc`, but was 'uclibc'. "
            "Occlum runs `musl` builds (the default)."
        ],
        id="libc-unknown",
    ),
    pytest.param(
        {"url": "ftp://x", "sha256": SHA},
        [
            "The `url` field in target svc:enclave is 'ftp://x', which is not an https://, http:// or file:// URL. "
            "For a local file use file:///absolute/path/to/archive.tar.gz."
        ],
        id="url-ftp",
    ),
    pytest.param(
        {"url": "/srv/jdk.tar.gz", "sha256": SHA},
        ["The `url` field in target svc:enclave is '/srv/jdk.tar.gz', which is not an https://"],
        id="url-bare-path",
    ),
    pytest.param(
        {"url": "https://mirror/jdk/", "sha256": SHA},
        [
            "The `url` field in target svc:enclave is 'https://mirror/jdk/', which does not end in an archive's "
            "file name (its last path segment is nothing)"
        ],
        id="url-ends-in-slash",
    ),
    pytest.param(
        {"url": "https://mirror/jdk.tar.gz#/..", "sha256": SHA},
        ["The `url` field in target svc:enclave is 'https://mirror/jdk.tar.gz#/..', which has a `#` fragment"],
        id="url-fragment",
    ),
    pytest.param(
        {"url": "https://ci:s3cret@mirror/jdk.tar.gz", "sha256": SHA},
        [
            "The `url` field in target svc:enclave is 'https://***@mirror/jdk.tar.gz', which has credentials "
            "(`user@` or `user:password@`) in it; they would be stored in the cache key, the SBOM and the logs"
        ],
        id="url-credentials",
    ),
    pytest.param(
        {"url": "https://x/jdk.tar.gz", "sha256": "abc"},
        [
            "The `sha256` field in target svc:enclave must be 64 lowercase hex digits, but was 'abc'. "
            "Compute it with `sha256sum <archive>`."
        ],
        id="sha256-short",
    ),
    pytest.param(
        {"url": "https://x/jdk.tar.gz", "sha256": SHA.upper()},
        [f"The `sha256` field in target svc:enclave must be 64 lowercase hex digits, but was '{SHA.upper()}'."],
        id="sha256-uppercase",
    ),
    pytest.param(
        {"url": "https://x/jdk.tar.gz", "sha256": SHA, "size": 0},
        [
            "The `size` field in target svc:enclave must be a whole number from 1 to 4294967296 (4 GiB; a "
            "JDK archive is about 200 MB), but was 0."
        ],
        id="size-zero",
    ),
    pytest.param(
        {"size": 1234},
        [
            "The `size` field in target svc:enclave only applies to a `url` pin; known versions carry their own "
            "size. Remove `size` or add `url` and `sha256`."
        ],
        id="size-without-url",
    ),
    pytest.param(
        {"url": "https://x/jdk.tar.gz"},
        [
            "The `dragonwell_jdk` target svc:enclave sets `url` without `sha256`. "
            "A direct pin needs both: url=... and sha256=..."
        ],
        id="url-without-sha256",
    ),
    pytest.param(
        {"sha256": SHA},
        [
            "The `dragonwell_jdk` target svc:enclave sets `sha256` without `url`. "
            "A direct pin needs both: url=... and sha256=..."
        ],
        id="sha256-without-url",
    ),
]


@pytest.mark.parametrize("fields, fragments", JDK_ERRORS)
def test_jdk_field_rejects(rule_runner: RuleRunner, fields: dict, fragments: list) -> None:
    msg = jdk_error(rule_runner, **fields)
    assert "svc/BUILD:1" in msg and "s3cret" not in msg
    for fragment in fragments:
        assert fragment in msg


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"version": "11.0.16.12.8", "edition": "extended", "libc": "glibc"}, id="known-version"),
        pytest.param({"url": "https://example.com/jdk.tar.gz", "sha256": SHA, "size": 1}, id="https-pin-with-size"),
        pytest.param({"url": "file:///srv/jdk.tar.gz", "sha256": SHA}, id="file-pin"),
        pytest.param({"url": "http://mirror/jdk.tar.gz", "sha256": SHA}, id="http-pin"),
    ],
)
def test_jdk_accepts(rule_runner: RuleRunner, fields: dict) -> None:
    tgt = jdk_target(rule_runner, **fields)
    assert isinstance(tgt, DragonwellJdkTarget)
    assert tgt[DragonwellUrlField].value == fields.get("url")
    assert tgt[DragonwellSha256Field].value == fields.get("sha256")
    assert tgt[DragonwellSizeField].value == fields.get("size")


def test_help_marks_required_fields_and_shows_defaults() -> None:
    """`pants help occlum_java_image` shows jdk and jar as required, as Pants' own targets show theirs,
    and `pants help dragonwell_jdk` the version a target gets by default."""
    from occlum.subsystems.dragonwell import DEFAULT_VERSION
    from occlum.target_types import DragonwellVersionField, OcclumJavaImageJarField, OcclumJavaImageJdkField

    assert OcclumJavaImageJdkField.required and OcclumJavaImageJarField.required
    assert DragonwellVersionField.default == DEFAULT_VERSION
