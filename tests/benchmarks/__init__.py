"""Tests of the benchmark scripts (their short forms, in-process)."""
