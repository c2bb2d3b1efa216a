"""`<name>.ra_config.json`: the config Occlum's remote-attestation verifiers read.

The shape is `ra_config_template.json` of Occlum's grpc_ratls and init_ra flows (in Occlum's
sources from 0.27.1, see `occlum.config.releases.has_ra_config`; at 0.31.0
`tools/toolchains/grpc_ratls/ra_tls/ra_config_template.json` and
`demos/remote_attestation/init_ra_flow/ra_config_template.json`). Their parser (grpc_ratls'
`parse_sgx_config_json`) crashes on a missing `verify_*` key and reads a value as on when its
printed form starts like "on" (so "", "o" and "onion" are on too: docs/attestation.md); it reads the
two measurements as 64 hex digits, the three numbers with strtoul (a string reads as 0), and
`debuggable` as on only for JSON true. It ignores keys it does not know, which is where the warnings
below go. So every key is always written, with a value of the type the parser reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

VERIFY_KEYS = (
    "verify_mr_enclave",
    "verify_mr_signer",
    "verify_isv_prod_id",
    "verify_isv_svn",
    "verify_config_svn",
    "verify_enclave_debuggable",
)


@dataclass(frozen=True)
class Measured:
    """What the verifier compares with the quote."""

    mrenclave: str
    mrsigner: str
    isv_prod_id: int  # the image's product_id
    isv_svn: int  # the image's version_number
    debuggable: bool
    sgx_mode: str  # HW or SIM

    def warnings(self) -> list[str]:
        out = []
        if self.debuggable:
            out.append(
                "DEBUGGABLE enclave: its memory can be read with a debugger, so it is not confidential. "
                "A verifier for production must not accept it; build with debuggable=False."
            )
        if self.sgx_mode != "HW":
            out.append(
                f"{self.sgx_mode} (simulation) enclave: it runs without SGX and cannot produce a quote, so it "
                'cannot be attested at all; build with `[occlum].sgx_mode = "HW"`.'
            )
        return out


def render_ra_config(m: Measured) -> dict[str, Any]:
    """Every check on, one accepted enclave: this build."""
    doc: dict[str, Any] = {key: "on" for key in VERIFY_KEYS}
    doc["sgx_mrs"] = [
        {
            "mr_enclave": m.mrenclave,
            "mr_signer": m.mrsigner,
            "isv_prod_id": m.isv_prod_id,
            "isv_svn": m.isv_svn,
            "config_svn": 0,  # the backend never enables KSS, so the enclave's CONFIGSVN is 0
            "debuggable": m.debuggable,
        }
    ]
    warnings = m.warnings()
    if warnings:
        doc["WARNING"] = warnings  # unknown to the parser, and the first thing a reader sees
    return doc
