"""The load generator of issue 10 (`make load`, `python -m tests.load`): journeys through the real
services at a fixed offered rate, and what they cost in CPU per process (docs/benchmarks.md)."""
