//! Integration tests: the real application on port 0 against a local server standing in for
//! GDELT. One test binary, so DuckDB is linked once.

mod api;
mod backfill;
mod cli;
mod failures;
mod feeds;
mod maintenance;
mod query;
mod real_data;
mod support;
