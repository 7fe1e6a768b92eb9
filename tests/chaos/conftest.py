"""Print the chaos summary table at the end of the run."""

from tests.chaos.summary import SUMMARY


def pytest_terminal_summary(terminalreporter) -> None:
    if not SUMMARY:
        return
    headers = ["scenario", "runs expected", "runs recorded", "duplicates", "lost", "recovery s"]
    rows = [headers, *[[str(cell) for cell in row] for row in SUMMARY]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers))]
    terminalreporter.section("chaos summary")
    for index, row in enumerate(rows):
        terminalreporter.write_line(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            terminalreporter.write_line("-+-".join("-" * width for width in widths))
