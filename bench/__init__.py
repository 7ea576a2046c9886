"""Benchmarks: ``make bench`` runs every ``bench/bench_*.py``; each prints its figures and
writes them to ``bench/results/<name>.json``, always beside a baseline measured in the same run."""
