"""A Django app for the benchmarks: an action that records the instant its own code begins."""
