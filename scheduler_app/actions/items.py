"""Per-item loops with a checkpoint: the shared engine of the multi-stock sync and the factor run.

Checkpoint (in `result.checkpoint`, and `current_item` = last_item): {"last_item": code,
"failed_items": [...]}: every item up to and including last_item is done, except failed_items. A
resumed run skips exactly the done items and tries the failed ones again (zquant skipped the item
that was in progress and every failed one: weak spot 25).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scheduler_app.executors.base import RunContext

logger = logging.getLogger("scheduler_app.actions")


@dataclass
class ItemsSummary:
    total: int = 0
    succeeded: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    last_item: str = ""

    @property
    def success_count(self) -> int:
        return self.succeeded + self.skipped

    def as_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "success": not self.failed,
            "total": self.total,
            "success_count": self.success_count,
            "failed_count": len(self.failed),
            "skipped_count": self.skipped,
            **self.counts,
        }
        if self.last_item:
            result["checkpoint"] = {"last_item": self.last_item, "failed_items": list(self.failed)}
        if self.failed:
            result["failed_symbols"] = list(self.failed)
        return result


def run_items(
    ctx: RunContext,
    items: list[str],
    work: Callable[[str], dict[str, int]],
    *,
    label: str,
) -> ItemsSummary:
    """Run `work(item)` for each item in sorted order; it returns counts to add up.

    An exception of `work` fails that item only (logged, counted, tried again on resume); a stop
    request (ExecutionStopped) ends the loop at once, with the checkpoint of the last item done.
    """
    items = sorted(dict.fromkeys(items))
    summary = ItemsSummary(total=len(items))
    saved = ctx.resume_checkpoint()
    last = str(saved.get("last_item") or "")
    failed_before = {str(item) for item in saved.get("failed_items") or []}
    done = {item for item in items if last and item <= last and item not in failed_before}
    summary.skipped = len(done)
    summary.failed = sorted(item for item in failed_before if item in items and item <= last)
    summary.last_item = last
    if last:
        ctx.checkpoint(last, failed_items=list(summary.failed))
        ctx.logger.info(
            "execution #%s resumes after %s: %s of %s items already done", ctx.execution_id, last, len(done), len(items)
        )
    processed = len(done)
    ctx.progress(processed=processed, total=len(items), message=f"{label}: {processed}/{len(items)}", force=True)
    for item in items:
        if item in done:
            continue
        ctx.check()
        ctx.progress(message=f"{label}: {item} ({processed + 1}/{len(items)})", check=False)
        try:
            counts = work(item)
        except Exception as error:  # one item's failure must not end the run (ExecutionStopped is not caught)
            ctx.logger.warning("execution #%s: %s failed for %s: %s", ctx.execution_id, label, item, error)
            if item not in summary.failed:
                summary.failed.append(item)
            summary.errors[item] = str(error)[:200]
        else:
            if item in summary.failed:
                summary.failed.remove(item)
            summary.succeeded += 1
            for key, value in counts.items():
                summary.counts[key] = summary.counts.get(key, 0) + value
        processed += 1
        summary.last_item = max(summary.last_item, item)
        ctx.progress(processed=processed, total=len(items), check=False, write=False, **summary.counts)
        ctx.checkpoint(summary.last_item, failed_items=list(summary.failed))
    return summary
