# Every target is a one-liner into scripts/; see README.md.
.PHONY: setup test build sam-build demo bench fuzz deny deploy broker-up broker-down lint clean

setup:        ## install every tool the project uses (.venv, rust components)
	scripts/tools.sh rust broker lint build

test:         ## fmt, clippy, unit + broker-backed tests, template lint
	scripts/test.sh

build:        ## release arm64 builds of every function (cargo lambda)
	scripts/build.sh

sam-build:    ## sam build
	scripts/build.sh sam

demo:         ## local end-to-end run of all four functions
	scripts/demo.sh

bench:        ## benchmarks, written to BENCHMARKS.md
	scripts/bench.sh

fuzz:         ## bounded fuzzing of the parsers
	scripts/fuzz.sh

deny:         ## cargo deny: licences, bans, sources, advisories
	scripts/deny.sh

deploy:       ## sam deploy --guided
	scripts/build.sh sam && .venv/bin/sam deploy --guided

broker-up:    ## start the local broker
	scripts/broker.sh up

broker-down:  ## stop the local broker
	scripts/broker.sh down

lint:         ## template lint only
	scripts/lint-template.sh

clean:
	scripts/broker.sh down; rm -rf target .aws-sam .tmp
