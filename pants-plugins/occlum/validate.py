"""Validate Occlum.json files for one Occlum release, without Pants.

    PYTHONPATH=pants-plugins python -m occlum.validate --release 0.31.0 Occlum.json...
    PYTHONPATH=pants-plugins python -m occlum.validate verify-package dist/svc/enclave.tar.gz

Exit status: 0 all files valid, 1 some file has problems, 2 usage error
(unknown release, unreadable file, not JSON). `verify-package` is occlum.attestation.verify: it
checks that a package, its measurements, ra_config and SBOM belong together (same exit codes).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, Optional

from occlum.config.releases import SUPPORTED_RELEASES, UnknownReleaseError, normalize_release
from occlum.config.validation import validate_config

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class _Usage(Exception):
    pass


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    # serde rejects duplicate fields; Python's json would silently keep the last one.
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _load(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise _Usage(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as e:
        raise _Usage(
            f"{path}: not valid JSON (Occlum needs strict JSON, no comments): "
            f"{e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except ValueError as e:
        raise _Usage(f"{path}: not valid JSON for Occlum: {e}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m occlum.validate",
        description="Strictly validate Occlum.json files for one Occlum release: JSON Schema plus the "
        "cross-field rules of gen_internal_conf and the LibOS. Unknown keys are errors.",
        epilog="Exit status: 0 all valid, 1 problems found, 2 usage error. "
        f"Supported releases: {', '.join(SUPPORTED_RELEASES)}. "
        "`verify-package PACKAGE.tar.gz` instead checks a package against its measurements, ra_config and SBOM.",
    )
    p.add_argument("--release", required=True, help="Occlum release, e.g. 0.31.0 (a leading 'v' is allowed)")
    p.add_argument("files", nargs="+", metavar="FILE", help="Occlum.json file(s) to check")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["verify-package"]:  # the validator PEX's second command
        from occlum.attestation import verify

        return verify.main(argv[1:])
    args = _parser().parse_args(argv)  # exits 2 on bad usage
    try:
        release = normalize_release(args.release)
    except UnknownReleaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        docs = [(path, _load(path)) for path in args.files]
    except _Usage as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    status = EXIT_OK
    for path, doc in docs:
        problems = validate_config(release, doc)
        if not problems:
            print(f"{path}: ok")
        for problem in problems:
            print(f"{path}: {problem}")
            status = EXIT_INVALID
    return status


if __name__ == "__main__":
    sys.exit(main())
