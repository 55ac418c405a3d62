# The README's two commands: `make water` (arrives with the water simulation) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
FORTRAN_BUILT := nemd/neighbors/.fortran-built

.PHONY: setup test test-slow fortran clean water water-data bench

# JAX keeps compiled programs here (compilations over 1 s), so repeated runs and tests
# that compile the same model skip XLA's work; delete it freely.
export JAX_COMPILATION_CACHE_DIR ?= $(CURDIR)/.cache/jax

setup: $(INSTALLED) fortran

$(INSTALLED): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,fortran]'
	@touch $@

# Optional Fortran neighbour backend; without gfortran the Numba backend is used.
fortran: $(FORTRAN_BUILT)

$(FORTRAN_BUILT): fortran_nl/cell_list.f90 fortran_nl/build.sh $(INSTALLED)
	@if ! command -v gfortran >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing gfortran with apt-get"; \
		(apt-get update -qq && apt-get install -y -qq gfortran >/dev/null) || true; \
	fi
	@if command -v gfortran >/dev/null 2>&1; then \
		bash fortran_nl/build.sh $(PY) && touch $@; \
	else \
		echo "gfortran not found: the Numba neighbour backend will be used"; \
	fi

# Two workers: XLA compilations, which dominate a cold run, are single-threaded
# (2 cores, measured in docs/benchmarks.md: warm cache 7.5 -> 4.3 min; cold, noisier, 12.5 -> 9.9 min).
test: setup
	$(PY) -m pytest -n auto --maxprocesses 2

test-slow: setup
	$(PY) -m pytest -m slow

clean:
	rm -rf $(VENV) .cache $(FORTRAN_BUILT) nemd/neighbors/_fortran_nl*.so build *.egg-info

# The main job: liquid-water NVT with the reference BPNN potential (a few minutes on 2 cores).
water: setup
	$(PY) simulations/water_nvt.py --atoms 512

# Teacher-labelled water data for training (BPNN RPBE-D3 MD over 12 + 2 states; 38 min on 2 cores
# as two single-threaded processes); written to data/water/ (not committed: make it again from
# this recipe, nemd/train/distill.py). The files do not depend on how the states are shared out.
SINGLE_THREAD = OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 \
	XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
water-data: setup
	$(SINGLE_THREAD) $(PY) -m nemd.cli distill --out data/water --shard 0/2 & \
	$(SINGLE_THREAD) $(PY) -m nemd.cli distill --out data/water --shard 1/2; \
	status=$$?; wait $$!; first=$$?; test $$status = 0 && test $$first = 0

# Scaling benchmarks, short CPU version (<= 15 min on 2 cores): runs/scaling.jsonl, runs/scaling.png.
bench: setup
	$(PY) -m pip install -q -e '.[bench]'
	cd benchmarks && ../$(PY) scaling.py --quick --out ../runs/scaling.jsonl --plot ../runs/scaling.png
