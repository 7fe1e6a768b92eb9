"""Execution results and errors: zquant's trimming rules (spec section 2), widened for resume.

zquant kept a whitelist of result keys, an `error_summary` taken from stderr, and a fallback to
core fields when the JSON grew past 60,000 characters. Its whitelist dropped workflow step results
and checkpoint counters, so resume could never work; the keys marked "widened" fix that.
"""

from __future__ import annotations

import json
from typing import Any

MAX_RESULT_CHARS = 60_000
MAX_ERROR_CHARS = 60_000
ERROR_SUMMARY_CHARS = 500
ERROR_TRUNCATION_SUFFIX = "\n... (内容由于过长已被自动截断 / truncated: too long) ..."
FALLBACK_NOTE = "结果数据过大，仅保留核心字段 / result too large, core fields kept"

RESULT_KEYS: tuple[str, ...] = (
    # status and identity
    "success",
    "exit_code",
    "message",
    "command",
    "work_dir",
    "duration_seconds",
    "resume_from_execution_id",
    # progress
    "progress_percent",
    "current_step",
    "total_steps",
    "current_item",
    "processed_items",  # widened
    "total_items",  # widened
    # summaries
    "total",
    "success_count",
    "failed_count",
    "total_count",
    "insert_count",
    "update_count",
    "delete_count",
    "skipped_count",  # widened
    "calculated_count",  # widened
    "invalid_count",  # widened
    "同步记录数",
    "总股票数",
    "成功",
    "失败",
    # workflows and checkpoints (widened)
    "workflow_type",
    "total_tasks",
    "failed_task_ids",
    "task_results",
    "checkpoint",
    "error_summary",
)
FALLBACK_KEYS: tuple[str, ...] = (
    "success",
    "exit_code",
    "message",
    "command",
    "resume_from_execution_id",
    "checkpoint",
)


def trim_result(result: dict[str, Any] | None) -> dict[str, Any]:
    """The part of `result` worth storing: whitelisted keys, an error summary, bounded in size."""
    if not result:
        return {}
    essential = {key: result[key] for key in RESULT_KEYS if key in result}
    stderr = result.get("stderr")
    if not essential.get("success", True) and isinstance(stderr, str) and stderr.strip():
        summary = stderr.strip()[:ERROR_SUMMARY_CHARS]
        essential["error_summary"] = summary + ("..." if len(stderr) > ERROR_SUMMARY_CHARS else "")
    if len(json.dumps(essential, ensure_ascii=False, default=str)) > MAX_RESULT_CHARS:
        essential = {key: _shorten(essential.get(key)) for key in FALLBACK_KEYS}
        essential["_note"] = FALLBACK_NOTE
    # A round trip turns dates, decimals and tuples into plain JSON values, as the database would.
    return json.loads(json.dumps(essential, ensure_ascii=False, default=str))


def _shorten(value: Any, limit: int = 5_000) -> Any:
    """A fallback value that cannot itself blow the size limit (a huge message, say)."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "..."
    if isinstance(value, dict | list) and len(json.dumps(value, ensure_ascii=False, default=str)) > limit:
        return None
    return value


def truncate_error(message: str | None) -> str:
    """An error message capped at 60,000 characters, marked when it was cut."""
    if not message:
        return ""
    if len(message) <= MAX_ERROR_CHARS:
        return message
    return message[:MAX_ERROR_CHARS] + ERROR_TRUNCATION_SUFFIX
