#!/usr/bin/env bash
# The whole suite: lint and type check (the whole project, [tool.mypy] in
# pyproject.toml), then pytest over unit, integration and e2e tests on the running
# native stack. pytest's "no tests collected" (exit 5) is a failure here.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/mypy
set +e
.venv/bin/pytest "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then echo "error: pytest collected no tests" >&2; exit 1; fi
exit $rc
