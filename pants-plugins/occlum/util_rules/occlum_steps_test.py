"""What a failed step of the toolchain tells the user (occlum_steps.py)."""

from __future__ import annotations

from pants.engine.addresses import Address

from occlum.util_rules.occlum_steps import measure_failure

ADDR = Address("svc", target_name="enclave")


def test_a_failed_measurement_names_the_tool_the_target_and_what_it_said() -> None:
    stderr = (
        b"Error: failed to dump build/lib/libocclum-libos.signed.so\n"
        b"error: `occlum print mrsigner` failed with exit code 1\n"
        b"partial stdout\n"
    )
    msg = str(measure_failure(ADDR, stderr))
    assert msg.startswith("`occlum print mrsigner` failed with exit code 1 for svc:enclave, after `occlum build`")
    assert "Its output ends with:\nError: failed to dump build/lib/libocclum-libos.signed.so\npartial stdout\n" in msg
    assert "error: `" not in msg


def test_without_the_script_s_line_the_whole_output_is_shown() -> None:
    msg = str(measure_failure(ADDR, b"Killed\n"))
    assert msg.startswith("reading the measurements failed for svc:enclave") and "\nKilled\n" in msg
