# Two commands on a fresh clone: `make test` and `make course`. Each creates .venv and installs
# the package with every extra on first use (and again when pyproject.toml changes).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# When run as root the grader drops student code to an unprivileged user, who must be able to
# run the venv's interpreter: prefer the system Python then (pyenv or conda under /root is
# unreachable for other users). Override with `make PYTHON=...`.
PYTHON ?= $(shell if [ "$$(id -u)" = 0 ] && /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; \
            then echo /usr/bin/python3; else echo python3; fi)
PYTEST_ARGS ?=

.PHONY: test course install browser sandbox-path clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@echo "== creating $(VENV) with $(PYTHON) and installing labkit[all] (first run: torch is large)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[all]"
	touch $@

# Headless Chromium (Debian package) for the website tests in a real browser.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q chromium; \
	  else echo "chromium is missing: sudo apt-get install chromium" >&2; exit 1; fi; }

# As root, the sandbox user must be able to reach the checkout (the venv lives in it).
sandbox-path:
	@if [ "$$(id -u)" = 0 ]; then d="$(CURDIR)"; while [ "$$d" != "/" ]; do \
	  if [ $$(( 0$$(stat -c %a "$$d") & 1 )) = 0 ]; then echo "chmod o+x $$d (grader sandbox user must reach the venv)"; chmod o+x "$$d"; fi; \
	  d=$$(dirname "$$d"); done; fi

test: install browser sandbox-path
	$(PY) -m pytest $(PYTEST_ARGS)

# assign rebuilds the labkit wheel whenever the source changed; public (last) assembles
# dist/public/, the only thing that goes to the public repository.
course: install sandbox-path
	$(PY) -m autograder assign --out dist
	$(PY) book/build_site.py --out dist/site
	$(PY) -m autograder public --dist dist
	@echo "== course built in dist/: labkit wheel, student/, solutions/, autograder/*.zip, site/"
	@echo "== dist/public/ is the public repository's content (see book/instructor_guide.md)"

clean:
	rm -rf dist build book/_build .pytest_cache
