"""Benchmarks: whole runs against the seed and the peers, the varied set of pairs, sizes, devices, front ends."""
