#!/usr/bin/env bash
# The README's first command: install, build, start the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/bin/drover demo "$@"
