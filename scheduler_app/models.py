"""Scheduled tasks and their executions (tables of the original zquant scheduler)."""

from __future__ import annotations

import datetime
import json
import secrets
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, validate_email
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from scheduler_app import calendar_rules, occurrences
from scheduler_app.conf import scheduler_settings
from scheduler_app.querysets import ScheduledTaskQuerySet, TaskExecutionQuerySet
from scheduler_app.results import trim_result, truncate_error
from scheduler_app.schedules import InvalidSchedule, get_zone, parse_cron, parse_weekdays

MAX_ID = 2**63 - 1  # BigAutoField; larger numbers cannot even be looked up on every database


def default_timezone() -> str:
    return scheduler_settings.TIMEZONE


def generate_job_id() -> str:
    """A job id that never changes, not even when the task is renamed."""
    return f"task-{uuid.uuid4().hex}"


class CappedTextField(models.TextField):
    """Text cut to 60,000 characters (with a marker) whenever it is written, also by update()."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return truncate_error(value) if isinstance(value, str) else value


class Calendar(models.Model):
    """A named calendar of open days: an exchange's trading days, an operator's maintenance days.

    Open days are the open weekdays minus the listed closed days (holidays), plus the listed open
    days and half days (calendar_rules). A calendar with no open weekday is a plain list of days.
    `source` names the app that publishes it (scheduler_app.calendars); such a calendar's days are
    replaced by every publication and are not edited by hand.
    """

    name = models.CharField(
        _("name"), max_length=50, unique=True, help_text=_("Unique name tasks refer to it by (Example: SSE).")
    )
    description = models.TextField(
        _("description"),
        max_length=2000,
        blank=True,
        default="",
        validators=[MaxLengthValidator(2000)],
        help_text=_("What the calendar is for (Example: Shanghai Stock Exchange trading days)."),
    )
    weekdays = models.CharField(
        _("open weekdays"),
        max_length=30,
        blank=True,
        default="1-5",
        help_text=_(
            "Weekdays that are open unless listed closed, written like cron's day-of-week field "
            "(0 or 7 = Sunday; Example: 1-5); empty for a plain list of open days."
        ),
    )
    known_until = models.DateField(
        _("known until"),
        null=True,
        blank=True,
        help_text=_(
            "The last day the listed days are complete for; after it only the open weekdays count "
            "(Example: 2024-12-31). Empty: the lists are complete."
        ),
    )
    source = models.CharField(
        _("source"),
        max_length=100,
        blank=True,
        default="",
        editable=False,
        help_text=_("The app that publishes this calendar's days; empty when it is kept here."),
    )
    revision = models.PositiveBigIntegerField(
        _("revision"),
        default=0,
        editable=False,
        help_text=_("Counts the changes of the calendar and its days; the scheduler rebuilds triggers when it moves."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    # Every saved change, who made it and when (the calendar's listed days are summed up in the change
    # reason of the version their change made: services.calendars).
    history = HistoricalRecords(table_name="zq_task_calendars_history", excluded_fields=["updated_at"])

    class Meta:
        db_table = "zq_task_calendars"
        ordering = ["name"]
        verbose_name = _("calendar")
        verbose_name_plural = _("calendars")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        self.name = (self.name or "").strip()
        if not self.name:
            errors["name"] = [gettext("A name is required.")]
        self.weekdays = " ".join((self.weekdays or "").split())
        try:
            parse_weekdays(self.weekdays)
        except InvalidSchedule as error:
            errors["weekdays"] = [str(error)]
        if errors:
            raise ValidationError(errors)


class CalendarDay(models.Model):
    """A day a calendar lists: closed (a holiday), open (also on a closed weekday), or a half day."""

    class Kind(models.TextChoices):
        CLOSED = calendar_rules.CLOSED, _("Closed (holiday)")
        OPEN = calendar_rules.OPEN, _("Open")
        HALF_DAY = calendar_rules.HALF_DAY, _("Half day (open, closes early)")

    calendar = models.ForeignKey(Calendar, verbose_name=_("calendar"), on_delete=models.CASCADE, related_name="days")
    date = models.DateField(_("date"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.CLOSED)
    closes_at = models.TimeField(
        _("closes at"), null=True, blank=True, help_text=_("For a half day: when it closes (Example: 11:30).")
    )
    note = models.CharField(
        _("note"), max_length=100, blank=True, default="", help_text=_("Why (Example: Spring Festival).")
    )

    class Meta:
        db_table = "zq_task_calendar_days"
        ordering = ["calendar", "date"]
        verbose_name = _("calendar day")
        verbose_name_plural = _("calendar days")
        constraints = [
            models.UniqueConstraint(fields=["calendar", "date"], name="zq_calendar_one_row_per_day"),
            models.CheckConstraint(
                condition=Q(closes_at__isnull=True) | Q(kind=calendar_rules.HALF_DAY),
                name="zq_calendar_closing_time_on_half_days",
                violation_error_message=_("Only a half day has a closing time."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.calendar_id} {self.date} {self.kind}"

    def clean(self) -> None:
        if self.closes_at is not None and self.kind != self.Kind.HALF_DAY:
            raise ValidationError({"closes_at": [gettext("Only a half day has a closing time.")]})


class ScheduledTask(models.Model):
    """A configured job: what to run (type and config), when (cron or interval) and how (retries)."""

    class TaskType(models.TextChoices):
        MANUAL_TASK = "manual_task", _("Manual task")
        COMMON_TASK = "common_task", _("Scheduled task")
        WORKFLOW = "workflow", _("Workflow")

    class OverlapPolicy(models.TextChoices):
        SKIP = "skip", _("Skip the new run")
        QUEUE = "queue", _("Queue the new run")
        ALLOW = "allow", _("Run both at once")
        REPLACE = "replace", _("Terminate the running one")

    class CatchUp(models.TextChoices):
        ONCE = "once", _("Run once after downtime")
        NONE = "none", _("Do not catch up")

    class CalendarRule(models.TextChoices):
        OPEN_DAYS = calendar_rules.OPEN_DAYS, _("Every open day")
        NTH_OF_WEEK = calendar_rules.NTH_OF_WEEK, _("The n-th open day of each week")
        LAST_OF_WEEK = calendar_rules.LAST_OF_WEEK, _("The n-th to last open day of each week (1 = the last)")
        NTH_OF_MONTH = calendar_rules.NTH_OF_MONTH, _("The n-th open day of each month")
        LAST_OF_MONTH = calendar_rules.LAST_OF_MONTH, _("The n-th to last open day of each month (1 = the last)")
        AFTER_EVENT = calendar_rules.AFTER_EVENT, _("T+n: the n-th open day after each day of the event calendar")

    class ScheduleStatus(models.TextChoices):
        """Computed for display, never stored."""

        DISABLED = "disabled", _("Disabled")
        PAUSED = "paused", _("Paused")
        # The labels are the execution statuses' (one vocabulary across the API, the admin and the docs).
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        SUCCESS = "success", _("Success")
        FAILED = "failed", _("Failed")

    name = models.CharField(_("name"), max_length=100, unique=True, help_text=_("Unique display name."))
    job_id = models.CharField(
        _("job id"),
        max_length=100,
        unique=True,
        default=generate_job_id,
        editable=False,
        help_text=_("Id of the scheduler job; generated once and stable across renames."),
    )
    task_type = models.CharField(
        _("task type"), max_length=20, choices=TaskType.choices, default=TaskType.COMMON_TASK, db_index=True
    )
    cron_expression = models.CharField(  # noqa: DJ001 - NULL means "no cron", as the constraints say
        _("cron expression"),
        max_length=100,
        null=True,
        blank=True,
        help_text=_("Five fields with crontab semantics: minute hour day month weekday (Example: 0 18 * * 1-5)."),
    )
    interval_seconds = models.PositiveIntegerField(
        _("interval (seconds)"), null=True, blank=True, help_text=_("Run every N seconds (Example: 300).")
    )
    timezone = models.CharField(
        _("timezone"),
        max_length=64,
        default=default_timezone,
        help_text=_("IANA timezone in which the cron fields are read (Example: Asia/Shanghai)."),
    )
    run_at = models.DateTimeField(
        _("run once at"),
        null=True,
        blank=True,
        help_text=_("A one-shot task: the instant it runs, once (no cron, no interval)."),
    )
    calendar = models.ForeignKey(
        Calendar,
        verbose_name=_("calendar"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tasks",
        help_text=_("Run only on open days of this calendar (the cron or interval picks the times)."),
    )
    calendar_rule = models.CharField(
        _("calendar rule"),
        max_length=20,
        choices=CalendarRule.choices,
        default=CalendarRule.OPEN_DAYS,
        help_text=_("Which open days are occurrence days."),
    )
    calendar_n = models.PositiveSmallIntegerField(
        _("n"),
        null=True,
        blank=True,
        help_text=_("The n of the calendar rule (Example: 1 for the first or the last open day; 2 for T+2)."),
    )
    event_calendar = models.ForeignKey(
        Calendar,
        verbose_name=_("event calendar"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="event_tasks",
        help_text=_("For T+n: the calendar whose open days are the events (Example: report dates)."),
    )
    valid_from = models.DateTimeField(
        _("valid from"), null=True, blank=True, help_text=_("No occurrence before this instant (included).")
    )
    valid_until = models.DateTimeField(
        _("valid until"), null=True, blank=True, help_text=_("No occurrence after this instant (included).")
    )
    jitter_seconds = models.PositiveIntegerField(
        _("jitter (seconds)"),
        default=0,
        validators=[MaxValueValidator(occurrences.MAX_JITTER_SECONDS)],
        help_text=_("Each run starts up to this many seconds after its planned time, the same in every process."),
    )
    enabled = models.BooleanField(_("enabled"), default=True, db_index=True)
    paused = models.BooleanField(_("paused"), default=False, db_index=True)
    paused_until = models.DateTimeField(
        _("paused until"),
        null=True,
        blank=True,
        help_text=_("A paused task resumes by itself at this instant; empty: paused until resumed."),
    )
    # Bounded so that one task cannot bloat every list page and API answer that carries it (a page holds
    # up to 500 tasks); a TextField enforces max_length only in forms, hence the validator for full_clean().
    description = models.TextField(
        _("description"),
        max_length=2000,
        blank=True,
        default="",
        validators=[MaxLengthValidator(2000)],
        help_text=_("What the task is for, at most 2,000 characters (Example: Daily bars after the close)."),
    )
    config = models.JSONField(
        _("config"),
        default=dict,
        blank=True,
        help_text=_('What to run, as a JSON object (Example: {"task_action": "example_task", "steps": 5}).'),
    )
    max_retries = models.PositiveIntegerField(
        _("max retries"), default=3, help_text=_("How many times a failed run is retried.")
    )
    retry_interval = models.PositiveIntegerField(
        _("retry interval (seconds)"), default=60, help_text=_("Wait before the first retry.")
    )
    retry_backoff = models.FloatField(
        _("retry backoff"), default=1.0, help_text=_("Multiplier of the wait for each further retry; 1 keeps it fixed.")
    )
    timeout_seconds = models.PositiveIntegerField(
        _("timeout (seconds)"), null=True, blank=True, help_text=_("A run longer than this is stopped and fails.")
    )
    overlap_policy = models.CharField(
        _("overlap policy"),
        max_length=10,
        choices=OverlapPolicy.choices,
        default=OverlapPolicy.SKIP,
        help_text=_("What happens when a run is due while another one is still active."),
    )
    misfire_grace_seconds = models.PositiveIntegerField(
        _("misfire grace (seconds)"),
        default=300,
        help_text=_("A run that could not start on time still starts if it is at most this late."),
    )
    catch_up = models.CharField(
        _("catch-up"),
        max_length=10,
        choices=CatchUp.choices,
        default=CatchUp.ONCE,
        help_text=_("After downtime: run once for all missed occurrences, or not at all."),
    )
    # The task's latest execution (the highest id that is neither skipped nor a retry still waiting),
    # kept true by runtime.transitions on every change of an execution: pages sort and filter on it
    # without a subquery per task.
    latest_execution_id = models.BigIntegerField(_("latest execution"), null=True, blank=True, editable=False)
    latest_execution_status = models.CharField(
        _("latest execution status"), max_length=20, blank=True, default="", editable=False, db_index=True
    )
    latest_execution_time = models.DateTimeField(
        _("latest execution start"), null=True, blank=True, editable=False, db_index=True
    )
    retention_days = models.PositiveIntegerField(
        _("keep runs (days)"),
        null=True,
        blank=True,
        help_text=_(
            "Finished runs older than this are deleted; empty: SCHEDULER_RETENTION_DAYS, 0: no age limit (Example: 30)."
        ),
    )
    retention_max_runs = models.PositiveIntegerField(
        _("keep runs (count)"),
        null=True,
        blank=True,
        help_text=_(
            "Only the newest this many runs are kept; empty: SCHEDULER_RETENTION_PER_TASK, 0: no count limit "
            "(Example: 1000)."
        ),
    )
    schedule_error = models.TextField(
        _("schedule error"),
        blank=True,
        default="",
        editable=False,
        help_text=_("Set by the scheduler when it cannot build this task's trigger; empty when all is well."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    # Every saved change of what an operator set, who made it and when. The fields the scheduler keeps
    # (the latest run, the schedule error) and the timestamps are not versions of the task.
    history = HistoricalRecords(
        table_name="zq_task_scheduled_tasks_history",
        excluded_fields=[
            "latest_execution_id",
            "latest_execution_status",
            "latest_execution_time",
            "schedule_error",
            "created_at",
            "updated_at",
        ],
    )
    objects = ScheduledTaskQuerySet.as_manager()

    class Meta:
        db_table = "zq_task_scheduled_tasks"
        ordering = ["name"]
        verbose_name = _("scheduled task")
        verbose_name_plural = _("scheduled tasks")
        permissions = [
            ("run_scheduledtask", _("Can run tasks and control executions")),
            # Commands run any program the site allows: a separate grant from editing tasks (services.permissions).
            ("change_command_scheduledtask", _("Can create or change command tasks")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(task_type="manual_task")
                | Q(cron_expression__isnull=True, interval_seconds__isnull=True, run_at__isnull=True),
                name="zq_task_manual_has_no_schedule",
                violation_error_message=_("A manual task has neither a cron expression, nor an interval, nor a time."),
            ),
            models.CheckConstraint(
                condition=Q(task_type="manual_task")
                | Q(cron_expression__isnull=False, interval_seconds__isnull=True, run_at__isnull=True)
                | Q(cron_expression__isnull=True, interval_seconds__isnull=False, run_at__isnull=True)
                | Q(cron_expression__isnull=True, interval_seconds__isnull=True, run_at__isnull=False),
                name="zq_task_scheduled_has_one_schedule",
                violation_error_message=_(
                    "A scheduled task has exactly one of a cron expression, an interval and a one-shot time."
                ),
            ),
            models.CheckConstraint(
                condition=Q(paused_until__isnull=True) | Q(paused=True),
                name="zq_task_paused_until_only_when_paused",
                violation_error_message=_("Only a paused task can be paused until a time."),
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True) | Q(valid_until__isnull=True) | Q(valid_from__lt=F("valid_until")),
                name="zq_task_validity_window_forward",
                violation_error_message=_("The validity window must end after it starts."),
            ),
            models.CheckConstraint(
                condition=Q(jitter_seconds__lte=occurrences.MAX_JITTER_SECONDS),
                name="zq_task_jitter_at_most_an_hour",
                violation_error_message=_("The jitter is at most 3600 seconds."),
            ),
            models.CheckConstraint(
                condition=Q(interval_seconds__isnull=True) | Q(interval_seconds__gt=0),
                name="zq_task_interval_positive",
                violation_error_message=_("The interval must be at least 1 second."),
            ),
            models.CheckConstraint(
                condition=~Q(cron_expression=""),
                name="zq_task_cron_not_blank",
                violation_error_message=_("An empty cron expression is stored as no cron expression."),
            ),
            models.CheckConstraint(
                condition=Q(retry_backoff__gte=1),
                name="zq_task_retry_backoff_at_least_one",
                violation_error_message=_("The retry backoff is at least 1."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_scheduled(self) -> bool:
        return self.task_type != self.TaskType.MANUAL_TASK

    def clean(self) -> None:
        """Field errors for every invariant, named after the field at fault."""
        errors: dict[str, list[str]] = {}
        self.name = (self.name or "").strip()
        if not self.name:
            errors["name"] = [gettext("A name is required.")]
        if isinstance(self.cron_expression, str):
            self.cron_expression = " ".join(self.cron_expression.split()) or None
        schedules = [
            name
            for name, value in (
                ("cron_expression", self.cron_expression),
                ("interval_seconds", self.interval_seconds),
                ("run_at", self.run_at),
            )
            if value not in (None, "")
        ]
        if not self.is_scheduled:
            for name, message in (
                ("cron_expression", gettext("A manual task runs only on demand: leave the cron expression empty.")),
                ("interval_seconds", gettext("A manual task runs only on demand: leave the interval empty.")),
                ("run_at", gettext("A manual task runs only on demand: leave the one-shot time empty.")),
            ):
                if name in schedules:
                    errors.setdefault(name, []).append(message)
        elif len(schedules) > 1:
            if "run_at" in schedules:
                message = gettext("A one-shot task runs at its time: leave the cron expression and the interval empty.")
            else:
                message = gettext("Set either a cron expression or an interval, not both.")
            errors.setdefault(schedules[-1], []).append(message)
        elif not schedules:
            errors.setdefault("cron_expression", []).append(
                gettext("A scheduled task needs a cron expression or an interval (or a one-shot time).")
            )
        self._clean_timing(errors)
        if self.cron_expression and "cron_expression" not in errors:
            try:
                parse_cron(self.cron_expression)
            except InvalidSchedule as error:
                errors.setdefault("cron_expression", []).append(str(error))
        if self.interval_seconds is not None and self.interval_seconds <= 0:
            errors.setdefault("interval_seconds", []).append(gettext("The interval must be at least 1 second."))
        try:
            get_zone(self.timezone)
        except InvalidSchedule as error:
            errors.setdefault("timezone", []).append(str(error))
        if self.retry_backoff is not None and self.retry_backoff < 1:
            errors.setdefault("retry_backoff", []).append(gettext("The retry backoff is at least 1."))
        config_error = config_problem(self.config)
        if config_error:
            errors.setdefault("config", []).append(config_error)
        if errors:
            raise ValidationError(errors)

    def _clean_timing(self, errors: dict[str, list[str]]) -> None:
        """The calendar rule, the validity window, the jitter and "paused until" (calendar_rules has the
        rule's checks; the service also builds the trigger, with the calendars' days, before saving)."""
        if self.calendar_rule in (None, ""):
            self.calendar_rule = self.CalendarRule.OPEN_DAYS
        rule_errors = calendar_rules.day_rule_errors(
            rule=self.calendar_rule,
            n=self.calendar_n,
            has_calendar=self.calendar_id is not None,
            has_event_calendar=self.event_calendar_id is not None,
            has_days=bool(self.cron_expression or self.interval_seconds is not None),
        )
        if rule_errors and not self.is_scheduled:
            rule_errors = {"calendar": [gettext("A manual task runs only on demand: it has no calendar.")]}
        for name, messages in rule_errors.items():
            errors.setdefault(name, []).extend(messages)
        if self.valid_from is not None and self.valid_until is not None and self.valid_from >= self.valid_until:
            errors.setdefault("valid_until", []).append(gettext("The validity window must end after it starts."))
        if self.run_at is not None and (self.valid_from is not None or self.valid_until is not None):
            errors.setdefault("run_at", []).append(
                gettext("A one-shot task runs once, at its time: it has no validity window.")
            )
        if not self.is_scheduled and (self.valid_from is not None or self.valid_until is not None):
            errors.setdefault("valid_from", []).append(
                gettext("A manual task runs only on demand: it has no validity window.")
            )
        if self.jitter_seconds and not self.is_scheduled:
            errors.setdefault("jitter_seconds", []).append(
                gettext("A manual task runs only on demand: it has no jitter.")
            )
        if self.jitter_seconds and self.interval_seconds and self.jitter_seconds >= self.interval_seconds:
            # Delayed runs wait `pending`; a delay as long as the interval would let them pile up.
            errors.setdefault("jitter_seconds", []).append(gettext("The jitter must be shorter than the interval."))
        if self.paused_until is not None and not self.paused:
            errors.setdefault("paused_until", []).append(
                gettext("Only a paused task can be paused until a time: tick paused, or leave this empty.")
            )


def config_problem(config: object) -> str | None:
    """Why a config cannot be stored (not an object, too large), or None."""
    if not isinstance(config, dict):
        return gettext("The config must be a JSON object, for example {}.")
    size = len(json.dumps(config, ensure_ascii=False, default=str).encode())
    limit = scheduler_settings.MAX_CONFIG_BYTES
    if size > limit:
        return gettext("The config is %(size)s bytes; the limit is %(limit)s bytes.") % {"size": size, "limit": limit}
    return None


def run_config(task_config: object, override: object) -> object:
    """The config a run executes: the task's, with the keys of the run's override (run now with
    parameters) replacing the task's at the top level. Without an override, the task's as it is."""
    if override is None:
        return task_config
    base = task_config if isinstance(task_config, dict) else {}
    return {**base, **(override if isinstance(override, dict) else {})}


class BlackoutWindow(models.Model):
    """A time in which a task (or, without a task, every task) does not start scheduled runs.

    Daily: a wall-clock span in its timezone, [from, until) (crossing midnight when until <= from),
    optionally only on open days of a calendar (the day it starts on). Once: [starts at, ends at).
    An occurrence inside is skipped or deferred to the end, as `action` says (occurrences.py).
    """

    class Kind(models.TextChoices):
        DAILY = occurrences.DAILY, _("Every day, from one time to another")
        ONCE = occurrences.ONCE, _("Once, from one instant to another")

    class Action(models.TextChoices):
        SKIP = occurrences.SKIP, _("Skip the run (recorded as skipped)")
        DEFER = occurrences.DEFER, _("Defer the run to the end of the window")

    name = models.CharField(
        _("name"), max_length=100, help_text=_("Shown in the reason of a skipped run (Example: Lunch break).")
    )
    task = models.ForeignKey(
        ScheduledTask,
        verbose_name=_("task"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="blackout_windows",
        help_text=_("The task it applies to; empty: every task."),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.DAILY)
    action = models.CharField(_("action"), max_length=10, choices=Action.choices, default=Action.SKIP)
    timezone = models.CharField(
        _("timezone"),
        max_length=64,
        default=default_timezone,
        help_text=_(
            "IANA timezone of the daily times, and in which a one-off window is shown (Example: Asia/Shanghai)."
        ),
    )
    from_time = models.TimeField(_("from"), null=True, blank=True, help_text=_("Daily: the start (Example: 11:30)."))
    until_time = models.TimeField(
        _("until"),
        null=True,
        blank=True,
        help_text=_("Daily: the end, excluded; earlier than the start to cross midnight."),
    )
    calendar = models.ForeignKey(
        Calendar,
        verbose_name=_("only on open days of"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="blackout_windows",
        help_text=_("Daily: only on the open days of this calendar (Example: SSE, for the lunch break)."),
    )
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True, help_text=_("Once: the start."))
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True, help_text=_("Once: the end, excluded."))
    enabled = models.BooleanField(_("enabled"), default=True)
    description = models.TextField(
        _("description"), max_length=2000, blank=True, default="", validators=[MaxLengthValidator(2000)]
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords(table_name="zq_task_blackout_windows_history", excluded_fields=["updated_at"])

    class Meta:
        db_table = "zq_task_blackout_windows"
        ordering = ["name", "id"]
        verbose_name = _("blackout window")
        verbose_name_plural = _("blackout windows")
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind=occurrences.DAILY, from_time__isnull=False, until_time__isnull=False)
                    & Q(starts_at__isnull=True, ends_at__isnull=True)
                    & ~Q(from_time=F("until_time"))
                )
                | (
                    Q(kind=occurrences.ONCE, starts_at__isnull=False, ends_at__isnull=False, starts_at__lt=F("ends_at"))
                    & Q(from_time__isnull=True, until_time__isnull=True, calendar__isnull=True)
                ),
                name="zq_blackout_daily_or_once",
                violation_error_message=_(
                    "A daily window has two different times; a one-off window two instants in order."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        self.name = (self.name or "").strip()
        if not self.name:
            errors["name"] = [gettext("A name is required.")]
        try:
            get_zone(self.timezone)
        except InvalidSchedule as error:
            errors["timezone"] = [str(error)]
        if self.kind == self.Kind.DAILY:
            for name in ("from_time", "until_time"):
                if getattr(self, name) is None:
                    errors.setdefault(name, []).append(gettext("A daily window needs a start and an end time."))
            if self.from_time is not None and self.from_time == self.until_time:
                errors.setdefault("until_time", []).append(
                    gettext("The window ends when it starts: it would be empty.")
                )
            for name in ("starts_at", "ends_at"):
                if getattr(self, name) is not None:
                    errors.setdefault(name, []).append(
                        gettext("A daily window has times, not instants: leave it empty.")
                    )
        elif self.kind == self.Kind.ONCE:
            for name in ("starts_at", "ends_at"):
                if getattr(self, name) is None:
                    errors.setdefault(name, []).append(gettext("A one-off window needs a start and an end."))
            if self.starts_at is not None and self.ends_at is not None and self.starts_at >= self.ends_at:
                errors.setdefault("ends_at", []).append(gettext("The window must end after it starts."))
            for name in ("from_time", "until_time"):
                if getattr(self, name) is not None:
                    errors.setdefault(name, []).append(
                        gettext("A one-off window has instants, not times: leave it empty.")
                    )
            if self.calendar_id is not None:
                errors.setdefault("calendar", []).append(gettext("Only a daily window can follow a calendar."))
        if errors:
            raise ValidationError(errors)


class TaskExecution(models.Model):
    """One run of a task: its state, timing, progress, control flags, result and liveness."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        SUCCESS = "success", _("Success")
        FAILED = "failed", _("Failed")
        COMPLETED = "completed", _("Completed with failures")
        TERMINATED = "terminated", _("Terminated")
        SKIPPED = "skipped", _("Skipped")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("Schedule")
        MANUAL = "manual", _("Manual")
        RETRY = "retry", _("Retry")
        WORKFLOW = "workflow", _("Workflow")
        RESUME = "resume", _("Resume")

    ACTIVE_STATUSES = (Status.PENDING, Status.RUNNING, Status.PAUSED)
    STARTED_STATUSES = (Status.RUNNING, Status.PAUSED)
    TERMINAL_STATUSES = (Status.SUCCESS, Status.FAILED, Status.COMPLETED, Status.TERMINATED, Status.SKIPPED)

    task = models.ForeignKey(
        ScheduledTask,
        verbose_name=_("task"),
        on_delete=models.CASCADE,
        db_constraint=False,  # a logical key, as in zquant: the ORM cascades, the database does not
        related_name="executions",
    )
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    trigger = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices, default=Trigger.SCHEDULE)
    scheduled_for = models.DateTimeField(
        _("scheduled for"), null=True, blank=True, help_text=_("When the run was due (the planned time).")
    )
    start_time = models.DateTimeField(_("start time"), null=True, blank=True, db_index=True)
    end_time = models.DateTimeField(_("end time"), null=True, blank=True)
    duration_seconds = models.FloatField(_("duration (seconds)"), null=True, blank=True)
    result = models.JSONField(_("result"), default=dict, blank=True)
    config_override = models.JSONField(
        _("config override"),
        null=True,
        blank=True,
        default=None,
        help_text=_("Config keys that replace the task's for this run only (run now with parameters)."),
    )
    error_message = CappedTextField(_("error message"), blank=True, default="")
    output_tail = models.TextField(
        _("output tail"), blank=True, default="", help_text=_("The last part of a command's output.")
    )
    retry_count = models.PositiveIntegerField(_("retry count"), default=0)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="children",
        help_text=_("The workflow run, the retried run or the resumed run."),
    )
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("triggered by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
    )
    progress_percent = models.FloatField(_("progress (%)"), default=0)
    current_item = models.CharField(_("current item"), max_length=255, blank=True, default="")
    total_items = models.PositiveIntegerField(_("total items"), default=0)
    processed_items = models.PositiveIntegerField(_("processed items"), default=0)
    estimated_end_time = models.DateTimeField(_("estimated end"), null=True, blank=True)
    is_paused = models.BooleanField(_("pause requested"), default=False)
    terminate_requested = models.BooleanField(_("terminate requested"), default=False)
    host = models.CharField(_("host"), max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField(_("pid"), null=True, blank=True)
    child_pid = models.PositiveIntegerField(
        _("child process group"),
        null=True,
        blank=True,
        help_text=_("Process group of a running command, so that a crashed run's children can be killed."),
    )
    child_identity = models.CharField(
        _("child identity"),
        max_length=100,
        blank=True,
        default="",
        help_text=_(
            "Boot id, pid and start time of the command's process: a crashed run's children are killed only "
            "while that very process still exists (not a later one that reused the pid)."
        ),
    )
    heartbeat_at = models.DateTimeField(_("heartbeat"), null=True, blank=True)
    worker = models.CharField(
        _("worker"), max_length=255, blank=True, default="", help_text=_("The process or Celery worker that ran it.")
    )
    handover_queue = models.CharField(
        _("hand-over queue"),
        max_length=100,
        blank=True,
        default="",
        help_text=_("The Celery queue the run was sent to; empty for runs the scheduler started itself."),
    )
    handed_over_at = models.DateTimeField(
        _("handed over at"),
        null=True,
        blank=True,
        help_text=_("When the run was sent to Celery; a run no worker started in time is sent again."),
    )
    occurrence_at = models.DateTimeField(
        _("occurrence"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("The planned time of the scheduled occurrence this row records; empty for other runs."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = TaskExecutionQuerySet.as_manager()

    class Meta:
        db_table = "zq_task_task_executions"
        ordering = ["-id"]
        verbose_name = _("task execution")
        verbose_name_plural = _("task executions")
        indexes = [
            models.Index(fields=["task", "start_time"], name="zq_exec_task_start_idx"),
            models.Index(fields=["status", "scheduled_for"], name="zq_exec_status_due_idx"),
            # A task's runs newest first (its latest execution, its history pages), on every database.
            models.Index(fields=["task", "-id"], name="zq_exec_task_newest_idx"),
            # The operations worker reads finished runs in (end_time, id) order past its watermark.
            models.Index(fields=["end_time"], name="zq_exec_end_idx"),
            # A task's last run in a state in one index dive (retention keeps its last success and
            # failure), and its latest successful durations (the stuck-run check).
            models.Index(fields=["task", "status"], name="zq_exec_task_status_idx"),
        ]
        constraints = [
            # One occurrence, one execution: a brief double leader hits this key instead of running twice.
            # Only scheduled occurrences carry occurrence_at; other runs (NULL) never clash.
            models.UniqueConstraint(fields=["task", "occurrence_at"], name="zq_exec_one_row_per_occurrence"),
            models.CheckConstraint(
                condition=Q(progress_percent__gte=0, progress_percent__lte=100),
                name="zq_exec_progress_0_100",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.task_id} {self.status}"

    @property
    def config(self) -> object:
        """The config this run executes (the task's, with this run's override)."""
        return run_config(self.task.config, self.config_override)

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    def get_result(self) -> dict[str, Any]:
        return dict(self.result or {})

    def set_result(self, result: dict[str, Any] | None) -> None:
        """Replace the stored result with its trimmed form (results.trim_result)."""
        self.result = trim_result(result)


class TaskDayStats(models.Model):
    """How many of a task's runs ended in each status, per local day of their start (TIME_ZONE), and
    how long they took: kept by runtime.transitions as runs end, so statistics never scan executions
    (and survive the pruning of old executions). Runs that never started count on NEVER_STARTED."""

    NEVER_STARTED = datetime.date(1, 1, 1)

    task = models.ForeignKey(
        ScheduledTask, verbose_name=_("task"), on_delete=models.CASCADE, db_constraint=False, related_name="+"
    )
    day = models.DateField(_("day"))
    status = models.CharField(_("status"), max_length=20, choices=TaskExecution.Status.choices)
    runs = models.PositiveIntegerField(_("runs"), default=0)
    timed_runs = models.PositiveIntegerField(_("runs with a duration"), default=0)
    duration_total = models.FloatField(_("total duration (seconds)"), default=0)

    class Meta:
        db_table = "zq_task_day_stats"
        verbose_name = _("task day statistics")
        verbose_name_plural = _("task day statistics")
        constraints = [models.UniqueConstraint(fields=["task", "day", "status"], name="zq_day_stats_one_row")]
        indexes = [models.Index(fields=["day"], name="zq_day_stats_day_idx")]

    def __str__(self) -> str:
        return f"{self.task_id} {self.day} {self.status}: {self.runs}"


class SchedulerState(models.Model):
    """The single row (pk=1) shared by all processes: the schedule version and the leader lease.

    Every change the scheduler must see bumps `schedule_version` (in transaction.on_commit); the
    scheduler polls it, and on PostgreSQL also LISTENs on CHANGES_CHANNEL, where each bump notifies.
    The leader holds the lease while `lease_expires_at` is in the future.
    """

    CHANGES_CHANNEL = "zquant_schedule"

    schedule_version = models.BigIntegerField(_("schedule version"), default=0)
    changed_at = models.DateTimeField(_("changed at"), null=True, blank=True)
    leader = models.CharField(_("leader node"), max_length=100, blank=True, default="")
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)

    class Meta:
        db_table = "zq_task_scheduler_state"
        verbose_name = _("scheduler state")
        verbose_name_plural = _("scheduler state")

    def __str__(self) -> str:
        return f"version {self.schedule_version}, leader {self.leader or '-'}"


class SchedulerNode(models.Model):
    """One row per runscheduler process: where it runs, when it last beat, what it has seen."""

    node_id = models.CharField(_("node id"), max_length=100, unique=True)
    host = models.CharField(_("host"), max_length=255)
    pid = models.PositiveIntegerField(_("pid"))
    started_at = models.DateTimeField(_("started at"))
    last_heartbeat = models.DateTimeField(_("last heartbeat"), db_index=True)
    stopped_at = models.DateTimeField(_("stopped at"), null=True, blank=True)
    is_leader = models.BooleanField(_("leader"), default=False)
    clock_skew_seconds = models.FloatField(
        _("clock skew (seconds)"),
        null=True,
        blank=True,
        help_text=_("How far this process's clock is ahead of the database's (negative: behind), last measured."),
    )
    version_seen = models.BigIntegerField(_("schedule version seen"), default=0)
    jobs = models.PositiveIntegerField(_("jobs"), default=0)

    class Meta:
        db_table = "zq_task_scheduler_nodes"
        ordering = ["-last_heartbeat"]
        verbose_name = _("scheduler process")
        verbose_name_plural = _("scheduler processes")

    def __str__(self) -> str:
        return self.node_id


# ---------------------------------------------------------------------------------------------- operations


def generate_webhook_secret() -> str:
    """A fresh per-subscription key for the webhook signature (HMAC-SHA256)."""
    return secrets.token_urlsafe(32)


class NotificationEvent(models.Model):
    """Something an operator should hear about, found by the scheduler from stored facts.

    `key` makes each fact one event however often it is read (a finished run, an outage, an
    episode of runs no worker took): the unique key is the deduplication.
    """

    class Kind(models.TextChoices):
        FAILED = "failed", _("Failed after its last retry")
        RECOVERED = "recovered", _("Recovered")
        SKIPPED = "skipped", _("Occurrences missed or skipped")
        STUCK = "stuck", _("Run stuck")
        NO_SCHEDULER = "no_scheduler", _("No live scheduler")
        HANDOVER_STUCK = "handover_stuck", _("Hand-over not picked up")

    kind = models.CharField(_("event"), max_length=20, choices=Kind.choices, db_index=True)
    key = models.CharField(_("key"), max_length=200, unique=True, help_text=_("One fact, one event (deduplication)."))
    task = models.ForeignKey(
        ScheduledTask,
        verbose_name=_("task"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
    )
    execution_id = models.BigIntegerField(
        _("execution"), null=True, blank=True, help_text=_("The run it is about (kept as a number: runs are pruned).")
    )
    summary = models.CharField(_("summary"), max_length=500)
    details = models.JSONField(_("details"), default=dict, blank=True)
    count = models.PositiveIntegerField(_("count"), default=1, help_text=_("Facts folded into it (skipped runs)."))
    detected_at = models.DateTimeField(_("detected at"), db_index=True)
    resolved_at = models.DateTimeField(
        _("resolved at"),
        null=True,
        blank=True,
        help_text=_("A failure or outage: when a success or a scheduler ended it."),
    )

    class Meta:
        db_table = "zq_task_notification_events"
        ordering = ["-id"]
        verbose_name = _("notification event")
        verbose_name_plural = _("notification events")
        indexes = [models.Index(fields=["kind", "resolved_at"], name="zq_event_open_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind}: {self.summary}"


class NotificationSubscription(models.Model):
    """Who hears about which events: one task's or every task's, by email or by a signed webhook."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        WEBHOOK = "webhook", _("Webhook")

    # The subscription's flag for each kind of event.
    KIND_FLAGS = {
        NotificationEvent.Kind.FAILED: "on_failure",
        NotificationEvent.Kind.RECOVERED: "on_recovery",
        NotificationEvent.Kind.SKIPPED: "on_skip",
        NotificationEvent.Kind.STUCK: "on_stuck",
        NotificationEvent.Kind.NO_SCHEDULER: "on_no_scheduler",
        NotificationEvent.Kind.HANDOVER_STUCK: "on_handover_stuck",
    }

    name = models.CharField(_("name"), max_length=100, help_text=_("For operators (Example: on-call webhook)."))
    task = models.ForeignKey(
        ScheduledTask,
        verbose_name=_("task"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notification_subscriptions",
        help_text=_("Empty: every task, and the scheduler-wide events (no live scheduler)."),
    )
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices, default=Channel.WEBHOOK)
    email_to = models.CharField(
        _("email to"),
        max_length=1000,
        blank=True,
        default="",
        help_text=_("Comma-separated addresses (Example: ops@example.com, oncall@example.com)."),
    )
    webhook_url = models.URLField(
        _("webhook URL"),
        max_length=500,
        blank=True,
        default="",
        help_text=_("Receives a JSON POST (Example: https://hooks.example.com/zquant)."),
    )
    secret = models.CharField(
        _("webhook secret"),
        max_length=200,
        default=generate_webhook_secret,
        help_text=_("Key of the X-Zquant-Signature header (HMAC-SHA256); generated, may be replaced."),
    )
    on_failure = models.BooleanField(_("failure after the last retry"), default=True)
    on_recovery = models.BooleanField(_("recovery"), default=True)
    on_skip = models.BooleanField(_("missed or skipped occurrences"), default=False)
    on_stuck = models.BooleanField(_("stuck runs"), default=True)
    on_no_scheduler = models.BooleanField(_("no live scheduler"), default=True)
    on_handover_stuck = models.BooleanField(_("hand-overs no worker picked up"), default=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    # The webhook secret is never copied into the history: whoever reads versions must not learn it.
    history = HistoricalRecords(
        table_name="zq_task_notification_subscriptions_history", excluded_fields=["secret", "updated_at"]
    )

    class Meta:
        db_table = "zq_task_notification_subscriptions"
        ordering = ["name", "id"]
        verbose_name = _("notification subscription")
        verbose_name_plural = _("notification subscriptions")
        constraints = [
            models.CheckConstraint(
                condition=(Q(channel="email") & ~Q(email_to="")) | (Q(channel="webhook") & ~Q(webhook_url="")),
                name="zq_subscription_has_target",
                violation_error_message=_("An email subscription needs addresses; a webhook needs a URL."),
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def target(self) -> str:
        return self.email_to if self.channel == self.Channel.EMAIL else self.webhook_url

    def recipients(self) -> list[str]:
        return [address.strip() for address in self.email_to.split(",") if address.strip()]

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.channel == self.Channel.EMAIL:
            if not self.recipients():
                errors["email_to"] = [gettext("An email subscription needs at least one address.")]
            for address in self.recipients():
                try:
                    validate_email(address)
                except ValidationError:
                    errors.setdefault("email_to", []).append(
                        gettext("%(address)s is not an email address.") % {"address": address}
                    )
        elif not self.webhook_url:
            errors["webhook_url"] = [gettext("A webhook subscription needs a URL.")]
        elif not self.webhook_url.lower().startswith(("http://", "https://")):
            errors["webhook_url"] = [gettext("The webhook URL must start with http:// or https://.")]
        if self.channel == self.Channel.WEBHOOK and len(self.secret or "") < 16:
            errors["secret"] = [gettext("The secret must be at least 16 characters.")]
        if not any(getattr(self, flag) for flag in self.KIND_FLAGS.values()):
            errors["on_failure"] = [gettext("Choose at least one event.")]
        if errors:
            raise ValidationError(errors)


class NotificationDelivery(models.Model):
    """One event told to one subscription: every attempt is recorded here (also the suppressed ones).

    The pending rows are the outbox: the scheduler's delivery threads send them, never its loop.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SUPPRESSED = "suppressed", _("Suppressed")

    FINAL_STATES = (State.SENT, State.FAILED, State.SUPPRESSED)

    event = models.ForeignKey(
        NotificationEvent, verbose_name=_("event"), on_delete=models.CASCADE, related_name="deliveries"
    )
    subscription = models.ForeignKey(
        NotificationSubscription,
        verbose_name=_("subscription"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
    )
    # Copied from the event, for the rate limit's index (subscription, kind, task, created_at).
    kind = models.CharField(_("event"), max_length=20, choices=NotificationEvent.Kind.choices)
    task = models.ForeignKey(
        ScheduledTask,
        verbose_name=_("task"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
    )
    channel = models.CharField(_("channel"), max_length=10, choices=NotificationSubscription.Channel.choices)
    target = models.CharField(_("sent to"), max_length=1000)
    state = models.CharField(_("state"), max_length=12, choices=State.choices, default=State.PENDING)
    reason = models.CharField(
        _("reason"), max_length=500, blank=True, default="", help_text=_("Why it was suppressed, or the last error.")
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    attempt_log = models.JSONField(
        _("attempts made"), default=list, blank=True, help_text=_("Every try: when, how it went, how long it took.")
    )
    response_status = models.PositiveIntegerField(_("HTTP status"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    claimed_by = models.CharField(_("sender"), max_length=100, blank=True, default="")
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        db_table = "zq_task_notification_deliveries"
        ordering = ["-id"]
        verbose_name = _("notification delivery")
        verbose_name_plural = _("notification deliveries")
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="zq_delivery_outbox_idx"),
            models.Index(fields=["subscription", "kind", "task", "created_at"], name="zq_delivery_rate_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} → {self.target} ({self.state})"


class OperationsState(models.Model):
    """The single row (pk=1) of the leader's operations worker: how far it has read the finished runs
    (in end_time, id order) and which leader it saw last (to count lease changes)."""

    feed_end_time = models.DateTimeField(_("read up to (end time)"), null=True, blank=True)
    feed_execution_id = models.BigIntegerField(_("read up to (execution)"), default=0)
    leader_seen = models.CharField(_("leader seen"), max_length=100, blank=True, default="")
    updated_at = models.DateTimeField(_("updated at"), null=True, blank=True)

    class Meta:
        db_table = "zq_task_operations_state"
        verbose_name = _("operations state")
        verbose_name_plural = _("operations state")

    def __str__(self) -> str:
        return f"read up to {self.feed_end_time} #{self.feed_execution_id}"


class OperationsCounter(models.Model):
    """Counters the metrics endpoint serves (runs by task and status, histogram buckets, lease changes,
    notification outcomes). Only ever increased, so pruning executions never turns them back."""

    name = models.CharField(_("name"), max_length=40)
    task_pk = models.BigIntegerField(_("task"), default=0, help_text=_("0: not about one task."))
    label = models.CharField(_("label"), max_length=40, blank=True, default="")
    value = models.FloatField(_("value"), default=0)

    class Meta:
        db_table = "zq_task_operations_counters"
        verbose_name = _("operations counter")
        verbose_name_plural = _("operations counters")
        constraints = [models.UniqueConstraint(fields=["name", "task_pk", "label"], name="zq_counter_one_row")]

    def __str__(self) -> str:
        return f"{self.name}[{self.task_pk}, {self.label}] = {self.value}"


class OperatorAction(models.Model):
    """One manual action on a task or a run (run now, pause, terminate, mark, clear, backfill, ...):
    who did it, when, on what, why. Written by the service that does the action, in its transaction,
    so an action that did not happen is not recorded and one that happened always is.

    The run is kept by id, not by foreign key: retention deletes old runs, the record of what an
    operator did to them stays. The task and the actor are kept by name as well, for the same reason.
    """

    class Action(models.TextChoices):
        RUN_NOW = "run_now", _("run now")
        ENABLE = "enable", _("enable")
        DISABLE = "disable", _("disable")
        PAUSE = "pause", _("pause")
        RESUME = "resume", _("resume")
        PAUSE_RUN = "pause_run", _("pause a run")
        RESUME_RUN = "resume_run", _("resume a run")
        TERMINATE = "terminate", _("terminate a run")
        RERUN = "rerun", _("rerun")
        MARK_SUCCESS = "mark_success", _("mark success")
        MARK_FAILED = "mark_failed", _("mark failed")
        CLEAR_STEP = "clear_step", _("clear a workflow step")
        BACKFILL = "backfill", _("backfill")
        RUN_MISSED = "run_missed", _("run missed occurrences")
        IMPORT = "import", _("import")
        RESTORE = "restore", _("restore a version")

    at = models.DateTimeField(_("at"), db_index=True)
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_name = models.CharField(_("by (name)"), max_length=150, blank=True, default="")
    task = models.ForeignKey(
        ScheduledTask, verbose_name=_("task"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    task_name = models.CharField(_("task (name)"), max_length=100, blank=True, default="")
    execution_id = models.BigIntegerField(_("execution"), null=True, blank=True, db_index=True)
    reason = models.CharField(_("reason"), max_length=500, blank=True, default="")
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        db_table = "zq_task_operator_actions"
        ordering = ["-id"]
        verbose_name = _("operator action")
        verbose_name_plural = _("operator actions")
        indexes = [models.Index(fields=["task", "-at"], name="zq_action_task_at_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.task_name}"
