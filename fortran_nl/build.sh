#!/usr/bin/env bash
# Build the Fortran neighbour kernel with numpy.f2py (meson backend) and put the
# extension next to the Python code as nemd.neighbors._fortran_nl.
# Usage: fortran_nl/build.sh [python]   (default: .venv/bin/python)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
python="${1:-$root/.venv/bin/python}"
python="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$here/cell_list.f90" "$tmp/"
cd "$tmp"
# meson and ninja come from the venv (the package's `fortran` extra).
PATH="$(dirname "$python"):$PATH" "$python" -m numpy.f2py -c cell_list.f90 -m _fortran_nl \
    --backend meson --f90flags="-O3" > build.log 2>&1 || { cat build.log; exit 1; }
rm -f "$root"/nemd/neighbors/_fortran_nl*.so
mv _fortran_nl*.so "$root/nemd/neighbors/"
echo "built $(ls "$root"/nemd/neighbors/_fortran_nl*.so)"
