#!/usr/bin/env bash
# Set up .venv with sicore and Snakemake, then run the workflow on config/config.yaml with the
# default profile (profiles/default: all local cores, print commands, keep going, redo killed jobs).
# Arguments are passed to snakemake, e.g.:  bash workflow/run.sh --dry-run
#                                           bash workflow/run.sh --configfile my_config.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[workflow]"
# Bytecode once: an editable install has none, and where PYTHONDONTWRITEBYTECODE is set (containers
# often do) every job would compile sicore again (about 0.07 s a job).
.venv/bin/python -m compileall -q sicore workflow/sicore_workflow > /dev/null
exec .venv/bin/snakemake --cores all --workflow-profile profiles/default "$@"
