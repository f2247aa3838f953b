# The two commands of the README: `make demo` runs the whole broker with a demo load; `make test` runs
# every test. Both install what is missing first.

.PHONY: deps test-deps demo test chaos build release load bench celery profile clean

deps:
	@scripts/install-deps.sh

# What the tests need beyond that: Debian's chromium, the real browser the console's tests drive.
test-deps:
	@scripts/install-deps.sh --tests

# Release build, then the embedded default: throwaway Redis + PostgreSQL, a coordinator, 2 agents and
# 1,000 demo tasks. Ctrl-C stops everything. DEMO_ARGS adds flags (e.g. DEMO_ARGS=--exit-after-demo).
demo: deps
	swift build -c release --product conveyor
	.build/release/conveyor dev --agents 2 --demo-tasks 1000 $(DEMO_ARGS)

# The tests whose promise is a time on the wall clock (a release within its second, a rate within 5 %, a
# lease's end, every start well within a lease, a 2 s lease renewed through a 4.5 s task): they run after
# the others, by themselves, so that 300 tests, a browser and a Redis Cluster starting beside them on two
# cores cannot make them measure the machine instead of Conveyor.
TIMING_TESTS := ScheduledTaskTests/(delayedTaskStartsOnTime|startTimeErrorUnderLoad)|ProgressTests/coalesced|WebhookTests/hangingReceiverDoesNotBlockOthers|FlowLimitTests/(rateOverSixtySeconds|killedAgentsSlotsReturnWithTheLease)|PriorityAndPauseTests/priorityOrder|LeaseTests/longTaskKeepsItsLease|LiveStatusTests/longPoll

# The tests that kill, freeze and reshard Redis Clusters of their own (18 redis-servers at once): after
# the timing tests, so that neither they nor the main run share the two cores with them.
CLUSTER_FAILURE_TESTS := ClusterFailoverTests

# Unit and integration tests (they start their own Redis and PostgreSQL), the timing tests on their own,
# the cluster failure tests on their own,
# then a short chaos run: 3,000 tasks while agents, the coordinator, Redis and PostgreSQL are killed (it
# fails on any lost task), then 1,000 live streams and 1,000 long-polls on one coordinator (it fails
# unless all see their task end).
test: test-deps
	swift build --build-tests
	swift test --skip-build --skip '$(TIMING_TESTS)|$(CLUSTER_FAILURE_TESTS)'
	swift test --skip-build --filter '$(TIMING_TESTS)'
	swift test --skip-build --filter '$(CLUSTER_FAILURE_TESTS)'
	.build/debug/conveyor-load chaos --tasks 3000 --duration 15
	.build/debug/conveyor-load watch --streams 1000 --waits 1000

# The full chaos run (20,000 tasks); CHAOS_ARGS adds flags.
chaos:
	LoadTests/chaos.sh $(CHAOS_ARGS)

build: deps
	swift build

release: deps
	swift build -c release --product conveyor
	swift build -c release --product conveyor-load

# The load generator on the release build; LOAD_ARGS picks the load (default: the batch ceiling).
load: release
	.build/release/conveyor-load run $(or $(LOAD_ARGS),--preset max)

# The package-benchmark suites of the hot path (Benchmarks/): throughput and allocations.
bench: deps
	swift package --disable-sandbox benchmark

# Conveyor against Celery 5 on the same Redis and machine (Celery installed from PyPI into .build-celery).
celery: deps
	LoadTests/celery-compare.sh $(CELERY_TASKS)

# Where the CPU goes at the ceiling (perf); PROFILE_ARGS are conveyor-load run flags.
profile: deps
	LoadTests/profile.sh $(PROFILE_ARGS)

clean:
	rm -rf .build
