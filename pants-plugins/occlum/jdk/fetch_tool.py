"""Download one archive and verify its sha256 (and size) before anyone can read it.

Self-contained (stdlib only): the plugin copies this file into a Pants sandbox and runs it as a
cacheable Process, so the verified archive lands in Pants' cache (local or remote) and a JDK pin
needs no published size (Pants' native DownloadFile requires one).

    python3 fetch_tool.py --sha256 HEX [--size N] --out archive/NAME --label TEXT URL [URL ...]

URLs are tried in order (mirrors first). Exit 0: OUT holds the verified bytes. Exit 2: nothing
written; one `error: ...` message on stderr lists every URL tried and why it failed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import urllib.error
import urllib.request

_CHUNK = 1 << 20


class FetchError(Exception):
    pass


def fetch_one(url: str, sha256: str, size: int | None, out: str, timeout: float) -> None:
    tmp = out + ".part"
    digest = hashlib.sha256()
    n = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as f:
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                n += len(chunk)
                if size is not None and n > size:
                    raise FetchError(f"the server sent more than the pinned {size} bytes")
                digest.update(chunk)
                f.write(chunk)
        if size is not None and n != size:
            raise FetchError(f"got {n} bytes, but the pin says {size} bytes")
        actual = digest.hexdigest()
        if actual != sha256:
            raise FetchError(
                f"sha256 mismatch: got {actual} ({n} bytes), pinned {sha256}. The server sent "
                "different bytes; do not re-pin unless you verified the new archive's origin"
            )
        os.replace(tmp, out)
    except FetchError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise FetchError(f"could not download: {reason}") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--label", default="archive")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args(argv)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    failures = []
    for url in args.urls:
        try:
            fetch_one(url, args.sha256.lower(), args.size, args.out, args.timeout)
            return 0
        except FetchError as e:
            failures.append(f"  - {url}: {e}")
        except Exception as e:  # never a traceback for the user
            failures.append(f"  - {url}: unexpected {type(e).__name__}: {e}")
    sys.stderr.write(
        f"error: could not fetch {args.label}; tried {len(args.urls)} URL(s):\n"
        + "\n".join(failures)
        + "\nFix: check the network or proxy (`[dragonwell].fetch_env_vars`), point "
        "`[dragonwell].mirrors` at a reachable copy (https:// or file://), or pin another build.\n"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
