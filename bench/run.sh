#!/usr/bin/env bash
# Benchmark perftui against wrk and Locust (FastHttpUser) in the same sitting.
# Installs what it needs: nginx and wrk from Debian, Locust from PyPI (in its own virtualenv,
# so its dependencies never touch perftui's). Usage: bash bench/run.sh [--runs 3] [--seconds 10]
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if ((${#missing[@]})); then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python -m pip install -q -e .
LOCUST_VENV="${LOCUST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/perftui-bench/locust-venv}"
if [ ! -x "$LOCUST_VENV/bin/locust" ]; then
  python -m venv "$LOCUST_VENV"
  "$LOCUST_VENV/bin/pip" install -q locust
fi
exec python bench/compare.py --locust "$LOCUST_VENV/bin/locust" "$@"
