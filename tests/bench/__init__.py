"""Benchmarks of the kernel's batching (README: "Delivery guarantees": commits are the scarce resource).

Run with `make bench` or `python -m tests.bench [--quick] [--only store|consumer|relay]`.
Every table compares its variants with a baseline run in the same process: ratios, not
absolute numbers, are what carries over from one machine to another. Nothing here asserts a
timing; a benchmark may assert correctness (e.g. that a redelivery changed nothing).
"""
