"""The verifier's config has exactly the shape of Occlum's own template, filled from this build."""

from __future__ import annotations

import json
from pathlib import Path

from occlum.attestation.ra_config import Measured, render_ra_config

TEMPLATE = Path(__file__).resolve().parents[3] / "tests/data/occlum/ra_config_template.json"


def _measured(**changes: object) -> Measured:
    values = dict(mrenclave="a" * 64, mrsigner="b" * 64, isv_prod_id=7, isv_svn=3, debuggable=False, sgx_mode="HW")
    values.update(changes)
    return Measured(**values)  # type: ignore[arg-type]


def _shape(doc: object) -> object:
    """Keys and value types, recursively: what grpc_ratls' parser relies on."""
    if isinstance(doc, dict):
        return {k: _shape(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_shape(v) for v in doc]
    return type(doc).__name__


def test_same_shape_as_occlums_template_every_check_on() -> None:
    template = json.loads(TEMPLATE.read_text())
    doc = render_ra_config(_measured())
    assert _shape(doc) == _shape(template)
    assert all(doc[k] == "on" for k in doc if k.startswith("verify_"))
    assert doc["sgx_mrs"] == [
        {
            "mr_enclave": "a" * 64,
            "mr_signer": "b" * 64,
            "isv_prod_id": 7,
            "isv_svn": 3,
            "config_svn": 0,
            "debuggable": False,
        }
    ]


def test_a_debuggable_or_sim_build_says_so_in_the_file() -> None:
    debug = render_ra_config(_measured(debuggable=True))
    assert debug["sgx_mrs"][0]["debuggable"] is True
    assert any("DEBUGGABLE" in w for w in debug["WARNING"])
    sim = render_ra_config(_measured(sgx_mode="SIM"))
    assert any("cannot be attested" in w for w in sim["WARNING"])
    assert "WARNING" not in render_ra_config(_measured())


PARSER_TOP_KEYS = (
    "verify_mr_enclave",
    "verify_mr_signer",
    "verify_isv_prod_id",
    "verify_isv_svn",
    "verify_config_svn",
    "verify_enclave_debuggable",
    "sgx_mrs",
)
PARSER_ENTRY_KEYS = ("mr_enclave", "mr_signer", "isv_prod_id", "isv_svn", "config_svn", "debuggable")


def counts_as_on(value: object) -> bool:
    """grpc_ratls' compare_item: strncmp(P + 1, "on", min(2, strlen(P) - 2)) == 0, P = cJSON_Print(value)."""
    printed = json.dumps(value) if not isinstance(value, dict) else "{\n}" if not value else json.dumps(value)
    n = min(2, len(printed) - 2) if len(printed) >= 2 else 2  # size_t: 1 - 2 wraps to a huge number
    return printed[1 : 1 + n].ljust(n, "\0") == "on"[:n]


def test_the_parser_s_rule_as_documented() -> None:
    assert [counts_as_on(v) for v in ("on", "", "o", "onion", 10, -1, [])] == [True] * 7
    assert [counts_as_on(v) for v in ("off", "On", "no", 1, 0, {}, True, False, None)] == [False] * 9


def test_every_key_the_parser_reads_is_always_written_and_on() -> None:
    """A missing key crashes Occlum's parser; a string number reads as 0. So every build, whatever its
    flags, writes every key, each verify_* on, each number a JSON integer."""
    variants: list[dict[str, object]] = [
        {},
        {"debuggable": True},
        {"sgx_mode": "SIM"},
        {"isv_prod_id": 0, "isv_svn": 65535},
    ]
    for changes in variants:
        doc = render_ra_config(_measured(**changes))
        assert set(PARSER_TOP_KEYS) <= set(doc)
        assert all(counts_as_on(doc[k]) and doc[k] == "on" for k in PARSER_TOP_KEYS[:-1])
        (entry,) = doc["sgx_mrs"]
        assert set(entry) == set(PARSER_ENTRY_KEYS)
        assert all(type(entry[k]) is int for k in ("isv_prod_id", "isv_svn", "config_svn"))
        assert type(entry["debuggable"]) is bool and len(entry["mr_enclave"]) == len(entry["mr_signer"]) == 64
