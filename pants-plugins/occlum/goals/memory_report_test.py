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
