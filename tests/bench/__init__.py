"""Benchmarks of the kernel's batching (README: "Delivery guarantees": commits are the scarce resource).

Run with `make bench` or `python -m tests.bench [--quick] [--only store|consumer|relay|raw-store|
raw-relay|rebuild|growth]`. Every table compares its variants with a baseline run in the same
process: ratios, not absolute numbers, are what carries over from one machine to another. The
first three tables compare the kernel with itself at batch size 1; the others compare it with
raw asyncpg/aiokafka doing the same work (tests/bench/baselines.py). Nothing here asserts a
timing; a benchmark may assert correctness (e.g. that a redelivery changed nothing).
"""
