#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian machine: system
# packages (Java, Maven, PostgreSQL, Prometheus, docker-compose v1 for
# validating compose.yaml), the virtual environment, and the Kafka jars.
# Idempotent: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
if ((${#need_apt[@]})); then
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  command -v apt-get >/dev/null || { echo "error: missing ${need_apt[*]} and no apt-get; install them yourself" >&2; exit 1; }
  echo "Installing system packages: ${need_apt[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need_apt[@]}"
  # Debian starts a packaged Prometheus/PostgreSQL where an init system runs;
  # the project runs its own on the same ports, so stop those.
  if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    $sudo systemctl disable --now prometheus postgresql 2>/dev/null || true
  fi
fi

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "Creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "Installing Python packages into .venv (torch for training is large; a few minutes)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ".[train,dev]"
  touch "$stamp"
fi
.venv/bin/python -m devstack classpath >/dev/null
echo "Dependencies ready."
