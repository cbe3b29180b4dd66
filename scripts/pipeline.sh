#!/usr/bin/env bash
# Start/stop the pipeline's Python services natively (after `devstack up`).
# Each service runs as its own process with a PID file under .state/pipeline/.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m devstack.pipeline "$@"
