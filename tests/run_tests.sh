#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, then runs the whole suite.
# System packages (git-annex for download_dataset) are installed when running as root with apt.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v git-annex >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git-annex) >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[test]"
# bytecode once (see workflow/run.sh): the workflow tests start many sicore jobs
.venv/bin/python -m compileall -q sicore workflow/sicore_workflow > /dev/null
exec .venv/bin/python -m pytest "$@"
