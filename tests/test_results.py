"""Result trimming and error truncation: each of zquant's rules (spec section 2), plus the widening."""

from __future__ import annotations

import json

import pytest

from scheduler_app.models import TaskExecution
from scheduler_app.results import (
    ERROR_TRUNCATION_SUFFIX,
    FALLBACK_NOTE,
    MAX_ERROR_CHARS,
    MAX_RESULT_CHARS,
    trim_result,
    truncate_error,
)
from tests.factories import TaskExecutionFactory


class TestTrimResult:
    @pytest.mark.parametrize("empty", [None, {}])
    def test_empty_result_stores_nothing(self, empty):
        assert trim_result(empty) == {}

    def test_whitelist_keeps_known_keys_and_drops_the_rest(self):
        result = {
            "success": True,
            "exit_code": 0,
            "command": "python job.py",
            "stdout": "lots of output",
            "stderr": "",
            "data": {"x": 1},
            "details": [1, 2],
            "同步记录数": 12,
            "insert_count": 3,
        }
        assert trim_result(result) == {
            "success": True,
            "exit_code": 0,
            "command": "python job.py",
            "同步记录数": 12,
            "insert_count": 3,
        }

    def test_widened_keys_for_workflows_and_resume_survive(self):
        result = {
            "task_results": [{"task_id": 1, "status": "success", "execution_id": 9}],
            "failed_task_ids": [2],
            "checkpoint": {"current_item": "000001.SZ"},
            "processed_items": 4,
            "total_items": 10,
            "calculated_count": 7,
            "invalid_count": 1,
        }
        assert trim_result(result) == result

    def test_error_summary_from_stderr_when_failed(self):
        assert trim_result({"success": False, "stderr": "  boom\n"})["error_summary"] == "boom"

    def test_error_summary_is_cut_at_500_with_ellipsis(self):
        summary = trim_result({"success": False, "stderr": "e" * 501})["error_summary"]
        assert summary == "e" * 500 + "..."

    def test_ellipsis_counts_the_unstripped_length(self):
        # zquant's rule: the "..." depends on the raw length, the text on the stripped one.
        summary = trim_result({"success": False, "stderr": "e" * 499 + " " * 10})["error_summary"]
        assert summary == "e" * 499 + "..."

    @pytest.mark.parametrize(
        "result",
        [
            {"success": True, "stderr": "warning only"},
            {"stderr": "no success key means success"},
            {"success": False, "stderr": "   "},
            {"success": False, "stderr": None},
        ],
    )
    def test_no_error_summary_otherwise(self, result):
        assert "error_summary" not in trim_result(result)

    def test_fallback_when_too_large(self):
        result = {
            "success": False,
            "exit_code": 2,
            "message": "done",
            "command": "x",
            "task_results": ["r" * 100] * 700,
            "resume_from_execution_id": 5,
        }
        trimmed = trim_result(result)
        assert trimmed == {
            "success": False,
            "exit_code": 2,
            "message": "done",
            "command": "x",
            "resume_from_execution_id": 5,
            "checkpoint": None,
            "_note": FALLBACK_NOTE,
        }

    def test_fallback_missing_keys_become_null_and_result_stays_bounded(self):
        trimmed = trim_result({"message": "m" * (MAX_RESULT_CHARS + 10)})
        assert trimmed["success"] is None
        assert trimmed["_note"] == FALLBACK_NOTE
        assert len(json.dumps(trimmed, ensure_ascii=False)) < MAX_RESULT_CHARS

    def test_non_json_values_become_text(self):
        from datetime import date

        assert trim_result({"message": date(2026, 1, 2)}) == {"message": "2026-01-02"}


class TestErrorTruncation:
    def test_short_message_is_kept(self):
        assert truncate_error("boom") == "boom"
        assert truncate_error(None) == ""

    def test_exactly_at_limit_is_kept(self):
        assert truncate_error("x" * MAX_ERROR_CHARS) == "x" * MAX_ERROR_CHARS

    def test_long_message_is_cut_and_marked(self):
        cut = truncate_error("x" * (MAX_ERROR_CHARS + 1))
        assert cut == "x" * MAX_ERROR_CHARS + ERROR_TRUNCATION_SUFFIX

    @pytest.mark.django_db
    def test_database_never_stores_more_even_through_update(self, task):
        execution = TaskExecutionFactory(task=task, error_message="y" * 70_000)
        execution.refresh_from_db()
        assert execution.error_message.endswith(ERROR_TRUNCATION_SUFFIX)
        assert len(execution.error_message) == MAX_ERROR_CHARS + len(ERROR_TRUNCATION_SUFFIX)
        TaskExecution.objects.filter(pk=execution.pk).update(error_message="z" * 80_000)
        execution.refresh_from_db()
        assert execution.error_message.startswith("z" * 100)
        assert len(execution.error_message) == MAX_ERROR_CHARS + len(ERROR_TRUNCATION_SUFFIX)


@pytest.mark.django_db
def test_set_and_get_result_round_trip(task):
    execution = TaskExecutionFactory(task=task)
    execution.set_result({"success": True, "message": "ok", "stdout": "dropped"})
    execution.save()
    execution.refresh_from_db()
    assert execution.get_result() == {"success": True, "message": "ok"}
    execution.set_result(None)
    assert execution.get_result() == {}
