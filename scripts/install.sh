#!/usr/bin/env bash
# Install the server (and, with --test, what the test suite needs). Used by .ci/run and the
# Dockerfile, so CI proves the same steps the image runs.
set -euo pipefail
cd "$(dirname "$0")/.."
extras=()
editable=""
for arg in "$@"; do
  case "$arg" in
    --test) extras+=("test") ;;
    --dev) extras+=("dev") ;;
    --editable) editable="-e" ;;
    *) echo "usage: scripts/install.sh [--test] [--dev] [--editable]" >&2; exit 2 ;;
  esac
done
spec="."
if [ ${#extras[@]} -gt 0 ]; then
  spec=".[$(IFS=,; echo "${extras[*]}")]"
fi
python3 -m pip install --disable-pip-version-check --no-input --quiet $editable "$spec"
