from __future__ import annotations

import pytest

from occlum.config.sizes import GB, KB, MB
from occlum.sizing.jvm_options import JvmOptionError, JvmOptions, parse_jvm_options


@pytest.mark.parametrize(
    "option,field,expected",
    [
        ("-Xmx512m", "max_heap", 512 * MB),
        ("-Xmx512M", "max_heap", 512 * MB),
        ("-Xmx1G", "max_heap", GB),
        ("-Xmx1g", "max_heap", GB),
        ("-Xmx256g", "max_heap", 256 * GB),
        ("-XX:MaxHeapSize=536870912", "max_heap", 512 * MB),
        ("-Xms256m", "initial_heap", 256 * MB),
        ("-XX:InitialHeapSize=1k", "initial_heap", KB),
        ("-Xss256k", "thread_stack", 256 * KB),
        ("-Xss256K", "thread_stack", 256 * KB),
        ("-Xss1048576", "thread_stack", MB),
        # ThreadStackSize counts kilobytes, and a suffix multiplies the count (as in HotSpot).
        ("-XX:ThreadStackSize=512", "thread_stack", 512 * KB),
        ("-XX:ThreadStackSize=1m", "thread_stack", GB),
        ("-XX:MaxMetaspaceSize=64m", "max_metaspace", 64 * MB),
        ("-XX:CompressedClassSpaceSize=128m", "compressed_class_space", 128 * MB),
        ("-XX:ReservedCodeCacheSize=64m", "reserved_code_cache", 64 * MB),
        ("-XX:MaxDirectMemorySize=32m", "max_direct_memory", 32 * MB),
        ("-XX:MaxRAM=2g", "max_ram", 2 * GB),
        ("-XX:MaxRAMPercentage=75.0", "max_ram_percentage", 75.0),
        ("-XX:MaxRAMPercentage=75", "max_ram_percentage", 75.0),
        ("-XX:MaxRAMPercentage=12.5", "max_ram_percentage", 12.5),
        ("-XX:+UseCompressedOops", "compressed_oops", True),
        ("-XX:-UseCompressedOops", "compressed_oops", False),
        ("-XX:-TieredCompilation", "tiered_compilation", False),
    ],
)
def test_each_option(option: str, field: str, expected: object) -> None:
    assert getattr(parse_jvm_options([option]), field) == expected


@pytest.mark.parametrize(
    "option, message",
    [
        # The t suffix is understood, but no enclave holds a terabyte heap.
        ("-Xmx1t", "JVM option -Xmx has the value '1t'; expected a size from 2m to 256g"),
        ("-Xmx1T", "JVM option -Xmx has the value '1T'; expected a size from 2m to 256g"),
        ("-Xmx257g", "JVM option -Xmx has the value '257g'; expected a size from 2m to 256g"),
        ("-Xmx0", "JVM option -Xmx has the value '0'; expected a size from 2m to 256g"),
        ("-Xmx1m", "JVM option -Xmx has the value '1m'; expected a size from 2m to 256g"),
        ("-Xmx99999999999999999999g", "JVM option -Xmx has the value '99999999999999999999g'; expected a size"),
        ("-Xss1t", "JVM option -Xss has the value '1t'; expected a size from 0 to 1g"),
        ("-Xss1025m", "JVM option -Xss has the value '1025m'; expected a size from 0 to 1g"),
        ("-XX:ThreadStackSize=2m", "JVM option -XX:ThreadStackSize has the value '2m'; expected a size from 0 to 1g"),
        ("-XX:ReservedCodeCacheSize=3g", "-XX:ReservedCodeCacheSize has the value '3g'; expected a size from 0 to 2g"),
        ("-XX:CompressedClassSpaceSize=4g", "has the value '4g'; expected a size from 1m to 3g"),
    ],
)
def test_sizes_out_of_range_are_refused(option: str, message: str) -> None:
    with pytest.raises(JvmOptionError) as e:
        parse_jvm_options([option])
    assert str(e.value).startswith(message) or message in str(e.value), str(e.value)


def test_sizes_at_the_bounds_are_accepted() -> None:
    got = parse_jvm_options(["-Xmx2m", "-Xss1g", "-XX:ReservedCodeCacheSize=2g", "-XX:CompressedClassSpaceSize=3g"])
    assert (got.max_heap, got.thread_stack, got.reserved_code_cache) == (2 * MB, GB, 2 * GB)


def test_nothing_given_is_all_defaults() -> None:
    assert parse_jvm_options([]) == JvmOptions()


def test_last_occurrence_wins_across_spellings() -> None:
    opts = parse_jvm_options(
        [
            "-Xmx1g",
            "-XX:MaxHeapSize=256m",
            "-Xss1m",
            "-XX:ThreadStackSize=256",
            "-XX:+UseCompressedOops",
            "-XX:-UseCompressedOops",
        ]
    )
    assert (opts.max_heap, opts.thread_stack, opts.compressed_oops) == (256 * MB, 256 * KB, False)
    assert parse_jvm_options(["-XX:MaxHeapSize=256m", "-Xmx1g"]).max_heap == GB


def test_unknown_options_and_program_args_are_ignored() -> None:
    opts = parse_jvm_options(
        [
            "-Dos.name=Linux",
            "-cp",
            "a.jar",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=x",
            "-XX:MaxMetaspaceSizeX=oops",
            "-verbose:gc",
            "-Xmx64m",
            "-jar",
            "app.jar",
            "-Xmx9g",
        ]
    )
    assert opts == JvmOptions(max_heap=64 * MB)


SIZE_FORM = "a whole number of bytes, optionally followed by k/K, m/M, g/G or t/T (binary units), e.g. 512m"


@pytest.mark.parametrize(
    "option,message",
    [
        ("-Xmx512mb", f"JVM option -Xmx has the malformed value '512mb'; expected {SIZE_FORM}"),
        ("-Xmx", f"JVM option -Xmx has the malformed value ''; expected {SIZE_FORM}"),
        ("-Xms1.5g", f"JVM option -Xms has the malformed value '1.5g'; expected {SIZE_FORM}"),
        ("-Xss-1k", f"JVM option -Xss has the malformed value '-1k'; expected {SIZE_FORM}"),
        (
            "-XX:MaxMetaspaceSize=64MB",
            f"JVM option -XX:MaxMetaspaceSize has the malformed value '64MB'; expected {SIZE_FORM}",
        ),
        ("-XX:MaxHeapSize=", f"JVM option -XX:MaxHeapSize has the malformed value ''; expected {SIZE_FORM}"),
        (
            "-XX:MaxDirectMemorySize",
            "JVM option -XX:MaxDirectMemorySize has the malformed value ''; expected "
            f"-XX:MaxDirectMemorySize=<value> with {SIZE_FORM}",
        ),
        (
            "-XX:MaxRAMPercentage=75%",
            "JVM option -XX:MaxRAMPercentage has the malformed value '75%'; expected "
            "a decimal number from 0 to 100, e.g. 75.0",
        ),
        (
            "-XX:MaxRAMPercentage=150",
            "JVM option -XX:MaxRAMPercentage has the malformed value '150'; expected "
            "a decimal number from 0 to 100, e.g. 75.0",
        ),
    ],
)
def test_malformed_values_name_option_value_and_form(option: str, message: str) -> None:
    with pytest.raises(JvmOptionError) as e:
        parse_jvm_options([option])
    assert str(e.value) == message
