"""Benchmarking code: measurements, memory meter, comparisons, scale runs, speed gate, GPU check."""
