import pytest

from occlum.toolchain.measurements import MeasurementParseError, parse_print_output, parse_sgx_sign_dump

ENC = bytes(range(32))
SIG = bytes(range(100, 132))


def _lines(b: bytes) -> str:
    return "\n".join(" ".join(f"0x{x:02x}" for x in b[i : i + 16]) for i in (0, 16))


def test_parse_dump() -> None:
    dump = (
        f"misc\nmetadata->enclave_css.body.enclave_hash.m:\n{_lines(ENC)}\nother: 1\nmrsigner->value:\n{_lines(SIG)}\n"
    )
    assert parse_sgx_sign_dump(dump) == (ENC.hex(), SIG.hex())


def test_parse_dump_missing_marker() -> None:
    with pytest.raises(MeasurementParseError, match="mrsigner"):
        parse_sgx_sign_dump(f"metadata->enclave_css.body.enclave_hash.m:\n{_lines(ENC)}\n")


def test_parse_dump_short() -> None:
    with pytest.raises(MeasurementParseError, match="found 16"):
        parse_sgx_sign_dump(
            f"metadata->enclave_css.body.enclave_hash.m:\n{_lines(ENC)[:79]}\nmrsigner->value:\n{_lines(SIG)}"
        )


def test_parse_print() -> None:
    assert parse_print_output("AB" * 32 + "\n") == "ab" * 32
    with pytest.raises(MeasurementParseError):
        parse_print_output("Error: No build/lib/libocclum-libos.signed.so existed")
