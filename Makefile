.PHONY: run test ci bench lint
run:
	python3 dev.py run
test:
	python3 dev.py test
ci:
	python3 dev.py ci
bench:
	python3 dev.py bench
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
