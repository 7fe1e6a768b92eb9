"""Schedule descriptions follow the active language completely, weekday and month names included."""

from __future__ import annotations

import re

import pytest
from django.utils import translation

from scheduler_app.schedules import describe_schedule

EXPRESSIONS = [
    "0 9 * * 1-5",
    "*/15 * * * *",
    "30 18 * * *",
    "0 0 1 * 1",
    "0 9 * 1-3 mon",
    "0 0 29 2 *",
    "*/5 9-15 * * 1-5",
    "@weekly",
    "@hourly",
    "0 0,12 1 */2 *",
    "0 9 * may,jun sat,sun",
    "0 0 * * 7",
    "5 4 * aug-dec wed",
    "0 12 * * 1,3,5",
    "0 0 1 jan *",
]


def described(expression: str, language: str) -> str:
    with translation.override(language):
        return describe_schedule(cron_expression=expression, interval_seconds=None)


class TestCronDescriptions:
    @pytest.mark.parametrize(
        ("expression", "english", "chinese"),
        [
            ("0 9 * * 1-5", "At 09:00, Monday through Friday", "在 09:00, 星期一 到 星期五"),
            ("*/15 * * * *", "Every 15 minutes", "每 15 分钟"),
            ("0 0 1 * 1", "At 00:00, on day 1 of the month, or on Monday", "在 00:00, 每月的 1 号, 或星期一"),
            (
                "0 9 * 1-3 mon",
                "At 09:00, only on Monday, January through March",
                "在 09:00, 仅在 星期一, 一月 到 三月",
            ),
            ("@weekly", "At 00:00, only on Sunday", "在 00:00, 仅在 星期日"),
            ("0 0 29 2 *", "At 00:00, on day 29 of the month, only in February", "在 00:00, 每月的 29 号, 仅在 二月"),
        ],
    )
    def test_both_languages(self, expression, english, chinese):
        assert described(expression, "en") == english
        assert described(expression, "zh-hans") == chinese

    @pytest.mark.parametrize("expression", EXPRESSIONS)
    def test_chinese_has_no_english_word_left(self, expression):
        text = described(expression, "zh-hans")
        assert not re.search(r"[A-Za-z]", text), text

    @pytest.mark.parametrize("expression", EXPRESSIONS)
    def test_english_stays_english(self, expression):
        assert not re.search(r"[^\x00-\x7f]", described(expression, "en"))


class TestOtherDescriptions:
    @pytest.mark.parametrize(
        ("seconds", "text"),
        [
            (1, "Every second"),
            (45, "Every 45 seconds"),
            (60, "Every minute"),
            (300, "Every 5 minutes"),
            (7200, "Every 2 hours"),
            (86400, "Every day"),
        ],
    )
    def test_interval_description(self, seconds, text):
        with translation.override("en"):
            assert describe_schedule(cron_expression=None, interval_seconds=seconds) == text

    def test_manual_description(self):
        assert described_manual("en").startswith("Manual")
        assert described_manual("zh-hans") == "手动：仅按需运行"


def described_manual(language: str) -> str:
    with translation.override(language):
        return describe_schedule(cron_expression=None, interval_seconds=None)


def test_a_description_is_worked_out_once_per_expression_and_language(monkeypatch):
    """cron-descriptor re-reads its catalogue for every description; a page of tasks asks for the same
    few expressions again and again, so each (expression, language) is described once."""
    import cron_descriptor

    built = []
    real = cron_descriptor.ExpressionDescriptor

    def counting(*args, **kwargs):
        built.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(cron_descriptor, "ExpressionDescriptor", counting)
    expression = "7 3 * * 2"  # not described by any other test of this process
    texts = {described(expression, "en") for _ in range(10)}
    chinese = {described(expression, "zh-hans") for _ in range(10)}
    assert texts == {"At 03:07, only on Tuesday"}
    assert len(chinese) == 1
    assert chinese != texts
    assert built == [expression, expression]  # once in English, once in Chinese
