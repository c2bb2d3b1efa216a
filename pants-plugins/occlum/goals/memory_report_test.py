"""`pants enclave-memory`: the report per image, without fetching a JDK."""

from __future__ import annotations

import pytest
from pants.testutil.rule_runner import RuleRunner

from occlum.goals.memory_report import EnclaveMemory
from occlum_testutil import new_rule_runner


@pytest.fixture
def rule_runner() -> RuleRunner:
    rr = new_rule_runner()
    # The JDK pin points nowhere: the report must not need it.
    rr.write_files(
        {
            "svc/BUILD": (
                "dragonwell_jdk(name='jdk', url='file:///nonexistent.tar.gz', sha256='" + "0" * 64 + "')\n"
                "file(name='app', source='app.jar')\n"
                "occlum_java_image(name='enclave', jdk=':jdk', jar=':app')\n"
                "occlum_java_image(name='small', jdk=':jdk', jar=':app', user_space_size='512MB')\n"
            ),
            "svc/app.jar": b"",
        }
    )
    return rr


def test_report_for_default_image(rule_runner: RuleRunner) -> None:
    result = rule_runner.run_goal_rule(EnclaveMemory, args=["svc:enclave"])
    assert result.exit_code == 0
    out = result.stdout
    assert "svc:enclave" in out and "0.31.0" in out
    for words in ("heap", "512MB", "metaspace", "64MB", "user_space_size", "1785MB", "1913MB"):
        assert words in out, (words, out)


def test_report_per_release(rule_runner: RuleRunner) -> None:
    out20 = rule_runner.run_goal_rule(
        EnclaveMemory, global_args=["--occlum-version=0.20.0"], args=["svc:enclave"]
    ).stdout
    out31 = rule_runner.run_goal_rule(EnclaveMemory, args=["svc:enclave"]).stdout
    assert "on Occlum 0.20.0" in out20 and "on Occlum 0.31.0" in out31
    # Before 0.24.2 every JVM mapping must fit the per-process mmap region; later it is one pool.
    assert out20 != out31


def test_report_shows_the_error_for_a_too_small_limit(rule_runner: RuleRunner) -> None:
    result = rule_runner.run_goal_rule(EnclaveMemory, args=["svc:small"])
    assert result.exit_code == 1
    assert "user_space_size is 512MB, but the JVM options need 1785MB" in result.stderr


@pytest.mark.parametrize(
    "fields, words",
    [
        # A mount's SEFS cache above the kernel heap: package refuses it, so the report does too.
        (
            "mounts=[{'target': '/data', 'type': 'sefs', 'source': './d', 'options': {'cache_size': '128MB'}}]",
            "cache_size 128MB exceeds the kernel heap (64MB)",
        ),
        # A maximum below the size beside it.
        ("user_space_size='4GB', user_space_max_size='2GB'", "user_space_max_size (2GB) is smaller than"),
        # Mounts on a release that ignores them.
        ("mounts=[{'target': '/data', 'type': 'ramfs'}]", "Occlum 0.20.0 ignores the `mount` list"),
    ],
)
def test_the_report_refuses_what_package_refuses(rule_runner: RuleRunner, fields: str, words: str) -> None:
    release = "0.20.0" if "ramfs" in fields else "0.31.0"
    rule_runner.write_files(
        {"bad/BUILD": f"occlum_java_image(name='img', jdk='//svc:jdk', jar='//svc:app', {fields})\n"}
    )
    result = rule_runner.run_goal_rule(EnclaveMemory, global_args=[f"--occlum-version={release}"], args=["bad:img"])
    assert result.exit_code == 1 and words in result.stderr, result.stderr
    assert "bad:img" in result.stderr


def test_a_thread_count_past_the_bound_is_refused_before_any_arithmetic(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {"bad/BUILD": "occlum_java_image(name='img', jdk='//svc:jdk', jar='//svc:app', java_threads=2**63)\n"}
    )
    with pytest.raises(Exception, match=r"must be a whole number from 1 to 4096"):
        rule_runner.run_goal_rule(EnclaveMemory, args=["bad:img"])


def test_sizes_no_enclave_holds_are_refused(rule_runner: RuleRunner) -> None:
    rule_runner.write_files(
        {
            "bad/BUILD": (
                "occlum_java_image(name='img', jdk='//svc:jdk', jar='//svc:app', java_threads=4096, "
                "jvm_options=['-Xmx1g', '-Xss1g', '-XX:MaxMetaspaceSize=64m'])\n"
            )
        }
    )
    result = rule_runner.run_goal_rule(EnclaveMemory, args=["bad:img"])
    assert result.exit_code == 1
    assert "more than 1048576MB, the most this backend sizes an enclave for" in result.stderr, result.stderr
