# Two commands, each doing all the set-up it needs:
#   make run    train the contractive auto-encoder with the tutorial's defaults
#   make test   run the test suite
# Both create .venv/ with the stack pinned in setup.cfg, link Theano to
# OpenBLAS where it can be had, and get the real MNIST into data/.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DATASET := data/mnist.pkl.gz

# the pinned requirements, read from setup.cfg (the one place they live)
REQUIREMENTS = import configparser; c = configparser.ConfigParser(); \
  c.read("setup.cfg"); \
  print(c["options"]["install_requires"] + c["options.extras_require"]["test"])

.PHONY: run test analysis scA venv blas data bench bench-peer clean

run: venv blas $(DATASET)
	$(PY) cA.py

test: venv blas $(DATASET)
	$(PY) -m pytest

# The paper's analyses: trains a CAE and a plain auto-encoder, then writes
# the figures and cA_plots/analysis.json
analysis: venv blas $(DATASET)
	$(PY) analysis.py

# Stacked CAEs: a 784-1000-10 MLP from random weights, from plain auto-encoder
# and from CAE pre-training; writes cA_plots/ScA_comparison.json (about 25 min)
scA: venv blas $(DATASET)
	$(PY) ScA.py --compare

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 11))' 2>/dev/null || \
	  { echo "error: Theano-PyMC needs Python 3.9 to 3.11; '$(PYTHON)' is not one (make PYTHON=/path/to/python3.11)" >&2; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c '$(REQUIREMENTS)' > $(VENV)/requirements.txt
	$(PY) -m pip install --quiet -r $(VENV)/requirements.txt
	touch $@

# OpenBLAS makes Theano's training about 2x faster than NumPy's C-API BLAS.
blas:
	@if [ "$$(gcc -print-file-name=libopenblas.so)" != libopenblas.so ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's libopenblas-dev for Theano's BLAS"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq libopenblas-dev >/dev/null || \
	  echo "notice: could not install libopenblas-dev; Theano will use NumPy's C-API BLAS (about 2x slower)"; \
	else \
	  echo "notice: OpenBLAS not found (Debian: sudo apt-get install libopenblas-dev); Theano will use NumPy's C-API BLAS (about 2x slower)"; \
	fi

data: $(DATASET)

$(DATASET): | venv
	$(PY) mnist_data.py $@

# The training benchmark (not part of the tests): every variant, both
# dtypes, batch sizes 10, 100 and 1000, with the PyTorch peer beside them.
bench: venv blas $(DATASET) bench-peer
	$(PY) benchmarks/bench_train.py

# The peer runs in its own environment: torch 2.13.0 installs from this
# machine's disk. Without it the benchmark skips the peer with a note.
PEER_VENV := .venv-peer
bench-peer: $(PEER_VENV)/.installed

$(PEER_VENV)/.installed:
	test -x $(PEER_VENV)/bin/python || $(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet torch==2.13.0 numpy || \
	  { echo "notice: could not install torch 2.13.0; the benchmark will skip the PyTorch peer"; rm -rf $(PEER_VENV); }
	test ! -d $(PEER_VENV) || touch $@

clean:
	rm -rf $(VENV) $(PEER_VENV) cA_plots/*.png cA_plots/*.npz .pytest_cache
