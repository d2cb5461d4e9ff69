# Two commands, each doing all the set-up it needs:
#   make run    train the contractive auto-encoder with the tutorial's defaults
#   make test   run the test suite
# Both pick a Python and its stack (Python 3.9-3.11: Theano-PyMC; 3.12 and
# newer: PyTensor; `make PYTHON=/path/to/python ...` chooses), keep .venv/
# set up with this checkout installed in editable mode and the stack pinned
# in setup.cfg (tools/venv.sh), link OpenBLAS where the mkl wheel cannot be
# had, and get the real MNIST into data/.

PYTHON ?=
VENV := .venv
PY := $(VENV)/bin/python
DATASET := data/mnist.pkl.gz

.PHONY: run test test-fast notebook analysis scA venv blas data bench bench-peer \
	bench-stacks bench-pytensor clean

run: venv blas $(DATASET)
	$(PY) cA.py

test: venv blas $(DATASET)
	$(PY) -m pytest

# the tests that take seconds, for an edit-test loop
test-fast: venv blas $(DATASET)
	$(PY) -m pytest -m 'not slow'

# The learner's notebook in JupyterLab, with this environment's kernel
# (installs JupyterLab into .venv/ the first time); JUPYTER_ARGS adds
# options, such as --no-browser on a machine without one
notebook: venv blas $(DATASET)
	@$(PY) -c 'import jupyterlab' 2>/dev/null || \
	  $(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,notebook]'
	$(PY) -m jupyter lab cA_notebook.ipynb $(JUPYTER_ARGS)

# The paper's analyses (paper/analysis.py): trains a CAE and a plain
# auto-encoder, then writes the figures and cA_plots/analysis.json
analysis: venv blas $(DATASET)
	$(PY) paper/analysis.py

# The paper's Table 1 (paper/table1.py, with ScA.py's stacked model):
# random initialisation, auto-encoder and CAE pre-training of one MLP;
# writes cA_plots/ScA_comparison.json. Its table and time: docs/stacked.md
scA: venv blas $(DATASET)
	$(PY) paper/table1.py

venv:
	@sh tools/venv.sh '$(PYTHON)'

# Without the mkl wheel (not x86-64), OpenBLAS makes training about 2x
# faster than NumPy's C-API BLAS.
blas: venv
	@if ls $(VENV)/lib/libmkl_rt.so.* >/dev/null 2>&1; then :; \
	elif [ "$$(gcc -print-file-name=libopenblas.so)" != libopenblas.so ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's libopenblas-dev for the BLAS"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq libopenblas-dev >/dev/null || \
	  echo "notice: could not install libopenblas-dev; using NumPy's C-API BLAS (about 2x slower)"; \
	else \
	  echo "notice: no MKL or OpenBLAS (Debian: sudo apt-get install libopenblas-dev); using NumPy's C-API BLAS (about 2x slower)"; \
	fi

data: $(DATASET)

$(DATASET): | venv
	$(PY) -m machinery.mnist_data $@

# The training benchmark (not part of the tests): the default step, the
# fused and T.grad graphs and a plain auto-encoder, float64 and float32,
# batch sizes 10, 100 and 1000, on both stacks, with the PyTorch peers
# (eager and torch.compile, benchmarks/peer_torch.py) beside them and the
# machine's peak; its time: docs/performance.md. Run it on an otherwise
# idle machine: it times both cores.
bench: venv blas $(DATASET) bench-peer bench-stacks
	$(PY) benchmarks/bench_train.py

# PyTensor's linkers (C, Numba) and BLAS (MKL, OpenBLAS, NumPy's)
bench-pytensor: venv blas $(DATASET) bench-stacks
	$(PY) benchmarks/bench_train.py --pytensor-choices --batch-sizes 10,100

# The other stack's environment beside .venv/: .venv-pytensor/ when .venv/
# has Theano-PyMC, .venv-theano/ when it has PyTensor (tools/venv.sh, with
# a Python for that stack); without one the benchmark measures one stack.
bench-stacks: venv
	@stack=$$(sh tools/venv.sh --which '$(PYTHON)' | cut -d' ' -f3); \
	case $$stack in theano) other=pytensor ;; *) other=theano ;; esac; \
	VENV=$(VENV)-$$other CA_BACKEND=$$other sh tools/venv.sh 2>&1 || \
	  echo "notice: no environment for the other stack ($$other): the benchmark measures $$stack only"

# The peers run in their own environment: torch 2.13.0 installs from this
# machine's disk. Without it the benchmark skips the peers with a note.
PEER_VENV := .venv-peer
bench-peer: $(PEER_VENV)/.installed

$(PEER_VENV)/.installed:
	test -x $(PEER_VENV)/bin/python || python3.11 -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet torch==2.13.0 numpy || \
	  { echo "notice: could not install torch 2.13.0; the benchmark will skip the PyTorch peer"; rm -rf $(PEER_VENV); }
	test ! -d $(PEER_VENV) || touch $@

clean:
	rm -rf $(VENV) $(VENV)-theano $(VENV)-pytensor $(PEER_VENV) $(VENV)*.lock cA_plots/*.png cA_plots/*.npz .pytest_cache
