#!/bin/sh
# The GPU check as one command for the device tool (docs/gpu.md, "The GPU check"), run from
# the repository root:   run(command="sh scripts/gpu_check.sh", timeout_s=570)
# scripts/gpu_check.py does the work in stages, each with its own time limit, within 530 s;
# the outer timeout is a backstop. Into $OUT: summary.json, gpu_check.log, junit-*.xml.
# Extra arguments go to gpu_check.py (e.g. --skip compile, --budget-s 400).
: "${OUT:?set OUT to the folder the device tool returns}"
PY=$(command -v python3 || command -v python)
exec timeout -k 5 550 "$PY" -u scripts/gpu_check.py --out "$OUT" --device cuda "$@"
