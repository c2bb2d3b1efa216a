#!/bin/sh
# Every jar Maven put into the fat jar's BOOT-INF/lib/ must be the one maven.lock pins (name and
# sha256), and no other: the enclave gets exactly the reviewed dependencies.
#   check-maven-lock.sh <fat jar> <maven.lock>
set -eu
jar_path="$1"
lock="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && jar xf "$OLDPWD/$jar_path" BOOT-INF/lib)
cd "$work/BOOT-INF/lib"
if ! sha256sum --check --quiet --strict "$lock"; then
  echo "check-maven-lock: a dependency's bytes differ from maven.lock (above). If the change is intended, review it and regenerate the lock as docs/spring-boot.md shows." >&2
  exit 1
fi
extra="$(ls | sort | comm -23 - "$(awk '{print $2}' "$lock" | sort > "$work/locked" && echo "$work/locked")")"
if [ -n "$extra" ]; then
  echo "check-maven-lock: not in maven.lock: $extra. Review it, then regenerate the lock as docs/spring-boot.md shows." >&2
  exit 1
fi
