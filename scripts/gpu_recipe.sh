#!/bin/sh
# The GPU recipe as one command for the device tool (see docs/gpu.md), run from the repository root
# with the packed crops carried as crops/:   sh scripts/gpu_recipe.sh [NETWORK [MINUTES]]
# DURN_BUILD_EXTENSION=0: training uses none of durn's compiled kernels, and building them costs minutes.
DURN_BUILD_EXTENSION=0 python3 -m pip install -q --no-deps --no-build-isolation -e . >/dev/null && exec env PYTHONUNBUFFERED=1 python3 scripts/gpu_recipe.py --network "${1:-durn_u}" --crops crops --out "${OUT:?set OUT to the folder the device tool returns}" --minutes "${2:-7}"
