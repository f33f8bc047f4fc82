# Two commands for a fresh machine with Python 3.10+ and the package registries:
#   make demo   set everything up, then run the default recipe end to end
#   make test   set everything up, then run the test suite (what CI runs)
#   make test-fast  the tests that need no Lava, no training and no GPU (under a minute)
#   make docs   build the manual (docs/) into site/; it opens offline: site/index.html
PYTHON ?= python3
VENV   ?= .venv
# torch, installed first so that nothing installed later replaces it. torch==2.13.0 is the
# version tested; which build pip installs for it depends on the index pip reads: from PyPI on
# Linux x86-64 the CUDA build (several GB of nvidia-* wheels, which also runs on a CPU), on this
# project's development and CI machines a local CPU build (2.13.0+cpu). Choose when .venv is
# set up (after make clean): the CPU-only build anywhere, or a CUDA build your driver supports:
#   make test TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu'
#   make demo TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128'
TORCH  ?= torch==2.13.0
BIN     = $(VENV)/bin
SITE    = $(shell $(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

.PHONY: setup data demo test test-fast docs clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	# torch first and fixed (see TORCH above): later installs keep it.
	$(BIN)/pip install -q $(TORCH)
	# Lava's final releases declare Python < 3.11 and stale pins (torch 2.3, pytest < 8, ...);
	# they run fine here without those pins, so install them without their metadata deps.
	$(BIN)/pip install -q --no-deps --ignore-requires-python lava-nc==0.10.0 lava-dl==0.6.0
	# Lava's wheels ship a top-level `tests` package that shadows ours: remove it.
	rm -rf "$(SITE)/tests"
	# norse, snntorch (NIR interop) and neurobench (cross-check of our counts) declare
	# torchvision or old pins they do not need here: install them without their metadata deps.
	$(BIN)/pip install -q --no-deps norse==1.1.0 snntorch==1.0.0 neurobench==2.3.0
	$(BIN)/pip install -q -e '.[test,docs]'
	touch $@

# Fashion-MNIST comes from Debian's dataset-fashion-mnist package. Installed when we are root
# and apt-get exists (as on CI); otherwise the tests that need it are skipped with the reason.
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
		|| echo "could not install dataset-fashion-mnist: Fashion-MNIST tests will be skipped"; \
	fi

demo: setup
	$(BIN)/neurodeploy run digits

test: setup data
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# The subjects are pytest markers (pyproject.toml); this subset leaves out the slow ones.
FAST = not (lava or slow or fuzz or gpu)
test-fast: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "$(FAST)"

# The manual: --strict makes a warning (a broken link or anchor) an error, as in the tests.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

clean:
	rm -rf $(VENV) runs site
