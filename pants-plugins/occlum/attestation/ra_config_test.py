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
