# Every target is a one-liner into scripts/; see README.md.
.PHONY: setup check test replay fresh-machine build sam-build demo bench fuzz deny deploy broker-up broker-down lint clean

setup:        ## install every tool the project uses (.venv, rust components)
	scripts/tools.sh rust broker lint build aws

check:        ## the edit loop: fmt, clippy, unit tests (no broker)
	scripts/test.sh --check

test:         ## fmt, clippy, unit + broker-backed tests, the README recipe, deny, fuzz pass, template lint
	scripts/test.sh

replay:       ## replay an on-failure batch: make replay FUNCTION=dynamo-stream-producer SOURCE=s3://bucket/key [AWS=deployed-name]
	.venv/bin/python scripts/replay.py $(FUNCTION) $(SOURCE) $(if $(AWS),--aws $(AWS))

fresh-machine: ## make demo and make test in a clean clone with an empty CARGO_HOME and HOME (about 30 min)
	scripts/fresh-machine.sh

build:        ## release arm64 builds of every function (cargo lambda)
	scripts/build.sh

sam-build:    ## sam build
	scripts/build.sh sam

demo:         ## the live local pipeline: moto, the broker, the four functions, mapping-runner, one fault
	scripts/demo.sh

bench:        ## benchmarks, written to BENCHMARKS.md
	scripts/bench.sh

fuzz:         ## bounded fuzzing of the parsers
	scripts/fuzz.sh

deny:         ## cargo deny: licences, bans, sources, advisories
	scripts/deny.sh

deploy:       ## sam deploy --guided
	scripts/build.sh sam && .venv/bin/sam deploy --guided

broker-up:    ## start the local broker, with the topics local.env names
	scripts/broker.sh up --local-topics

broker-down:  ## stop the local broker
	scripts/broker.sh down

lint:         ## template lint only
	scripts/lint-template.sh

clean:
	scripts/broker.sh down; rm -rf target .aws-sam .tmp
