# Build/test entry points. `make test` is what CI runs (.ci/run).
# Recipes use bash: the test recipe relies on `trap` and $$? handling.
SHELL := /bin/bash

VENV ?= .venv
PYTHON ?= python3
PYTEST_ARGS ?=

# pip runs only when setup.cfg/pyproject.toml is newer than the stamp, or
# when the set of top-level packages (*/__init__.py) changed: the editable
# install maps only the packages it found at install time. The stamp holds
# that set, so editing an __init__.py does not trigger a reinstall.
STAMP := $(VENV)/.installed-stamp
PACKAGES := $(sort $(wildcard */__init__.py))
ifneq ($(PACKAGES),$(strip $(file < $(STAMP))))
.PHONY: $(STAMP)
endif

.PHONY: venv run test fuzz reliability kiosk screenshots bench soak system-packages clean officer screenshots-officer traveller screenshots-traveller

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	echo '$(PACKAGES)' > $@

system-packages:
	@scripts/system-packages.sh

# Local demo server (the flask commands live in api/).
run: venv
	$(VENV)/bin/flask --app api init-db
	$(VENV)/bin/flask --app api seed-demo
	@echo "API:  http://127.0.0.1:5000/api/v1   docs: http://127.0.0.1:5000/docs   health: http://127.0.0.1:5000/readyz"
	$(VENV)/bin/flask --app api run --host 127.0.0.1 --port 5000

# One shell for the whole recipe so the EXIT trap always stops and deletes
# the throwaway cluster, whether pytest passes, fails or is interrupted.
# pytest's exit code is propagated; 5 ("no tests collected") fails too,
# with a message, so an empty or mis-pointed run cannot look green.
test: system-packages venv
	@pgdir=$$(mktemp -d -t taxfree-pg.XXXXXX); \
	trap 'scripts/throwaway-postgres.sh stop "$$pgdir"' EXIT; \
	trap 'exit 130' INT TERM; \
	url=$$(scripts/throwaway-postgres.sh start "$$pgdir") || exit 1; \
	rc=0; TEST_POSTGRES_URL="$$url" $(VENV)/bin/python -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5), failing" >&2; fi; \
	exit $$rc

# docs/reliability.md: the fault and attack tests it lists (a few minutes),
# on SQLite and PostgreSQL, then the table of what each one saw.
reliability: system-packages venv
	@pgdir=$$(mktemp -d -t taxfree-pg.XXXXXX); out=$$(mktemp -d -t taxfree-reliability.XXXXXX); \
	trap 'scripts/throwaway-postgres.sh stop "$$pgdir"; rm -rf "$$out"' EXIT; \
	url=$$(scripts/throwaway-postgres.sh start "$$pgdir") || exit 1; \
	rc=0; RELIABILITY_FIGURES="$$out/figures.json" TEST_POSTGRES_URL="$$url" \
	  $(VENV)/bin/python -m pytest -q -p no:cacheprovider --junitxml="$$out/junit.xml" \
	  $$($(VENV)/bin/python scripts/reliability_report.py --tests) || rc=$$?; \
	$(VENV)/bin/python scripts/reliability_report.py "$$out/junit.xml" "$$out/figures.json" || rc=$$?; \
	exit $$rc

# The kiosk app, windowed, against the API of `make run` with its demo kiosk
# token (kiosk_app/config.py lists every setting).
kiosk: venv
	TAXFREE_KIOSK_DEVICE_TOKEN=$${TAXFREE_KIOSK_DEVICE_TOKEN:-$$(cat instance/demo-kiosk-token 2>/dev/null)} \
	TAXFREE_KIOSK_EXIT_POINT=$${TAXFREE_KIOSK_EXIT_POINT:-AMS} $(VENV)/bin/taxfree-kiosk --windowed

# PNGs for reviewers in screenshots/ (ignored by git): every web page
# (portal, status page, dashboard) at desktop and phone widths through the
# Debian chromium, every kiosk screen in several languages and every
# officer screen, offscreen.
screenshots: system-packages venv screenshots-officer screenshots-traveller
	$(VENV)/bin/python tests/portal/screenshots.py
	SDL_VIDEODRIVER=offscreen $(VENV)/bin/python -m kiosk_app.screenshots screenshots/kiosk

# Every traveller screen at 360x640 and 412x915 dp in six languages, in
# screenshots/traveller/ (no API needed).
screenshots-traveller: system-packages venv
	SDL_VIDEODRIVER=offscreen $(VENV)/bin/python -m traveller_app.screenshots screenshots/traveller

# Many more generated requests per operation than make test sends.
fuzz: system-packages venv
	@pgdir=$$(mktemp -d -t taxfree-pg.XXXXXX); \
	trap 'scripts/throwaway-postgres.sh stop "$$pgdir"' EXIT; \
	url=$$(scripts/throwaway-postgres.sh start "$$pgdir") || exit 1; \
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} TEST_POSTGRES_URL="$$url" $(VENV)/bin/python -m pytest -q tests/api/test_fuzz.py

# Performance benchmarks (bench/README.md), not part of `make test`: about
# 15 minutes; writes bench/results/latest.md and latest.json.
bench: venv
	@bench/system-packages.sh
	$(VENV)/bin/python -m pip install -q -e '.[test,bench]'
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

# Soak run (bench/README.md), not part of `make test`: 10 minutes of mixed
# load on gunicorn and a throwaway PostgreSQL (SOAK_SECONDS=60 for a short
# run, SOAK_DATABASE=sqlite); writes bench/results/soak.md and soak.json and
# fails if errors, memory growth or latency drift miss their thresholds.
soak: venv
	@bench/system-packages.sh
	$(VENV)/bin/python -m pip install -q -e '.[test,bench]'
	$(VENV)/bin/python bench/soak.py $(SOAK_ARGS)

# The customs officer's handheld (taxfree-officer) against the API of
# `make run` (another terminal), in Dutch (the officers' language) until the
# officer picks English; OFFICER_ARGS e.g. --camera none or --language en.
officer: venv
	$(VENV)/bin/taxfree-officer --api-url http://127.0.0.1:5000 --language nl $(OFFICER_ARGS)

# PNGs of every officer screen in screenshots/officer/en/ and .../nl/: the
# real screens driven against a live API on a throwaway SQLite database, at
# 2x density.
screenshots-officer: system-packages venv
	CI= OFFICER_SCREENSHOTS=$(CURDIR)/screenshots/officer KIVY_METRICS_DENSITY=2 \
		$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/officer/test_officer_screenshots.py

# The traveller's phone app in a phone-sized window against the API of
# `make run`, with a simulated phone standing in Schiphol's departures
# beside the demo sensor post AMS-D2-01 (its secret from the file
# seed-demo writes), hearing its tokens.
traveller: venv
	$(VENV)/bin/taxfree-traveller --api-url http://127.0.0.1:5000 \
		--sensor-posts instance/demo-sensor-posts.json \
		--simulate $${TRAVELLER_SIMULATE:-AMS-D2-01} $(TRAVELLER_ARGS)

clean:
	rm -rf $(VENV) instance/ .pytest_cache/ *.egg-info/
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
