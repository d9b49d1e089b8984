# The two commands a new user needs: `make demo` and `make test`.
.PHONY: demo test lint venv engine engines engines-down images sanity units integration testbed-up testbed-down bench clean
# The venv scripts/bootstrap.sh makes (DOCKHAND_VENV moves it, as in scripts/lib.sh).
PYTHON := $(or $(DOCKHAND_VENV),.venv)/bin/python

demo:  ## run playbooks/demo.yml on the local Docker engine (sets up everything first)
	scripts/demo.sh

test:  ## every test: lint, sanity, units, integration against a real engine and registries, bench smoke
	scripts/test.sh

lint:  ## the checks Galaxy and the Ansible package run (ansible-lint, galaxy-importer, docs, changelog, REUSE), offline
	scripts/lint.sh

venv:
	scripts/bootstrap.sh

engine: venv
	scripts/engine.sh

engines: venv  ## start Debian 13's engines (overlay2 and containerd store) with their local images
	scripts/modern_engine.sh up all
	for env in .state/engine-debian13-*.env; do (. "$$env" && export DOCKER_HOST && scripts/build_images.sh) || exit 1; done

engines-down:
	scripts/modern_engine.sh down all

images: engine
	scripts/build_images.sh

testbed-up: images
	. .state/engine.env && $(PYTHON) tests/testbed/testbed.py up

testbed-down:
	$(PYTHON) tests/testbed/testbed.py down

sanity: venv
	scripts/ansible-test.sh sanity --python 3.11 --requirements

units: venv
	scripts/ansible-test.sh units --python 3.11 --requirements

integration: testbed-up
	scripts/ansible-test.sh integration --python 3.11 --local

bench: images
	. .state/engine.env && $(PYTHON) benchmarks/run.py

clean:
	rm -rf tests/output benchmarks/work
