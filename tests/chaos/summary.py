"""The rows of the chaos summary table: each scenario appends one, conftest prints them at the end."""

SUMMARY: list[list[object]] = []
