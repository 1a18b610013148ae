#!/usr/bin/env bash
# The GPU lane in one command (benchmarks/gpu_lane.py): dependencies checked, the gpu tests,
# the GPU benchmark rows, results under benchmarks/results/<gpu-name>/.
#
#   benchmarks/gpu_lane.sh                  # on a machine with a CUDA GPU
#   benchmarks/gpu_lane.sh --rehearse       # the same steps on the CPU, Triton's interpreter
#
# Where lark (gtdsl's one dependency beyond torch and numpy) is not installed and cannot be
# downloaded, carry its wheel in wheels/ (or .whl/) at the repository root:
#   pip download --no-deps -d wheels/ 'lark>=1.2,<2'       # on a machine with network
# and this script installs it from there (pip install --no-index --find-links wheels/ lark;
# into a private folder on PYTHONPATH where site-packages is read-only).
set -u
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null 2>&1 || PY=python
if ! "$PY" -c "import lark" >/dev/null 2>&1; then
    for dir in wheels .whl; do
        if ls "$dir"/lark-*.whl >/dev/null 2>&1; then
            echo "installing lark from $dir/" >&2
            if ! "$PY" -m pip install -q --no-index --find-links "$dir" lark; then
                site="${TMPDIR:-/tmp}/gtdsl-lane-site"
                "$PY" -m pip install -q --no-index --no-deps --target "$site" "$dir"/lark-*.whl \
                    && export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
            fi
            break
        fi
    done
fi
exec "$PY" -m benchmarks --gpu-lane "$@"
