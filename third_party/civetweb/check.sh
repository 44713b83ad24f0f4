#!/usr/bin/env bash
# Proves that the vendored CivetWeb is Debian's pristine 1.15+dfsg-4 source plus patches/*.patch and
# nothing else (ctest third_party.civetweb): the patches are undone, in reverse order, on a copy of
# src/ and include/, the result must match UPSTREAM.sha256 (the checksums of Debian's files), and
# redoing the patches must give back the vendored files byte for byte. --fuzz=0: a patch that no
# longer applies exactly fails here instead of being applied approximately.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$here/src" "$here/include" "$tmp/"
mapfile -t patches < <(find "$here/patches" -name '*.patch' 2>/dev/null | sort)

listed=$(awk '{print $2}' "$here/UPSTREAM.sha256" | sort)
present=$(cd "$here" && find src include -type f | sort)
if [ "$listed" != "$present" ]; then
  echo "FAIL: the vendored files differ from those listed in UPSTREAM.sha256"
  diff <(echo "$listed") <(echo "$present") || true
  exit 1
fi
for ((i = ${#patches[@]} - 1; i >= 0; i--)); do
  patch -d "$tmp" -p1 -R --fuzz=0 --quiet --no-backup-if-mismatch <"${patches[i]}" ||
    { echo "FAIL: ${patches[i]} does not undo cleanly on the vendored files"; exit 1; }
done
(cd "$tmp" && sha256sum --quiet --strict -c "$here/UPSTREAM.sha256") ||
  { echo "FAIL: with the patches undone, the files are not Debian's"; exit 1; }
for p in "${patches[@]}"; do
  patch -d "$tmp" -p1 --fuzz=0 --quiet --no-backup-if-mismatch <"$p"
done
diff -r "$here/src" "$tmp/src" >/dev/null && diff -r "$here/include" "$tmp/include" >/dev/null ||
  { echo "FAIL: the vendored files are not exactly Debian's plus the patches"; exit 1; }
echo "ok: Debian's civetweb 1.15+dfsg-4 + ${#patches[@]} patch(es)"
