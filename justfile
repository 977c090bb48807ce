# Every recipe CI runs; `just ci` is CI. The steps live in .ci/run so the two cannot differ.

# Run every CI step.
ci:
    bash .ci/run

# Check formatting.
fmt:
    bash .ci/run fmt

# Lint with warnings as errors.
clippy:
    bash .ci/run clippy

# The README's test command: SQLite and in-process fan-out, no services needed.
test:
    bash .ci/run test

# The same suites against PostgreSQL and Redis (starting them if they are down).
test-services:
    bash .ci/run services test-services

# Check that dependencies point inward.
layering:
    bash .ci/run layering

# Check that openapi/ matches the code.
drift:
    bash .ci/run drift

# Validate openapi/asyncapi.json with the reference AsyncAPI parser.
asyncapi:
    bash .ci/run asyncapi

# Regenerate openapi/ from the code.
openapi:
    cargo run -p confab-server -- openapi

# Drive a running server with the load tool, e.g. `just load direct --pairs 50 --seconds 10`.
# The server must allow the load (see crates/load/src/main.rs for the settings).
load *ARGS:
    cargo run --release -p confab-load -- {{ARGS}}

# The load scenarios against fresh release servers on SQLite and on PostgreSQL + Redis, with
# pgbench's ceiling from the same run; rewrites the results in BENCHMARKS.md.
bench:
    bash bench/run

# The Criterion micro-benchmarks; rewrites their table in BENCHMARKS.md.
bench-micro:
    bash bench/micro

# Run the server (SQLite in ./data).
run:
    cargo run --release
