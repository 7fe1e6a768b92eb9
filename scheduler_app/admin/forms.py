"""The task form: the config edited as JSON, validated exactly like the API (services.tasks.task_validate)
and checked against what the signed-in user may make a task run (services.permissions)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from django import forms
from django.contrib.admin import helpers
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.forms.fields import InvalidJSONInput
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext_lazy as _

from scheduler_app.exceptions import PermissionDenied
from scheduler_app.models import ScheduledTask
from scheduler_app.selectors import workflows_using_task
from scheduler_app.services.permissions import Actor, Work, task_work_check
from scheduler_app.services.tasks import EDITABLE_FIELDS, TASK_DISABLE_USED_BY_WORKFLOW, task_validate


@cache
def timezone_names() -> list[str]:
    return sorted(available_timezones())


class PrettyJSONField(forms.JSONField):
    """A JSON field shown indented, so that operators can read and edit the config."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


class TimezoneInput(forms.TextInput):
    """A text input that suggests the IANA timezone names (a <datalist>, so typing filters them)."""

    list_id = "zq-timezones"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"list": self.list_id, "autocomplete": "off", **(attrs or {})})

    def render(self, name, value, attrs=None, renderer=None):
        options = format_html_join("", '<option value="{}">', ((zone,) for zone in timezone_names()))
        datalist = format_html('<datalist id="{}">{}</datalist>', self.list_id, options)
        return super().render(name, value, attrs, renderer) + datalist


class ReasonActionForm(helpers.ActionForm):
    """The action bar of the task list, with the operator's optional reason for the action's record."""

    reason = forms.CharField(label=_("Reason"), required=False, max_length=500)


class ScheduledTaskForm(forms.ModelForm):
    """Model fields plus the service's checks; errors land on the field they concern.

    `actor` is the user the form saves for (the admin sets it per request); nobody by default, so a
    form used without one cannot give a task a command.
    """

    actor: Actor = None

    class Meta:
        model = ScheduledTask
        fields = list(EDITABLE_FIELDS)  # what the services let a caller set
        field_classes = {"config": PrettyJSONField}
        widgets = {
            "config": forms.Textarea(attrs={"rows": 14, "cols": 80, "class": "zq-json", "spellcheck": "false"}),
            "description": forms.Textarea(attrs={"rows": 2, "cols": 80}),
            "cron_expression": forms.TextInput(attrs={"class": "zq-mono", "placeholder": "0 18 * * 1-5"}),
            "timezone": TimezoneInput(),
        }

    # Fields with a default that a form may leave out (an older form, a script): the default then.
    OPTIONAL_WITH_DEFAULT = ("calendar_rule", "jitter_seconds")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in self.OPTIONAL_WITH_DEFAULT:
            if name in self.fields:
                self.fields[name].required = False

    def clean_calendar_rule(self) -> str:
        return self.cleaned_data.get("calendar_rule") or ScheduledTask.CalendarRule.OPEN_DAYS

    def clean_jitter_seconds(self) -> int:
        value = self.cleaned_data.get("jitter_seconds")
        return 0 if value is None else value

    def clean_cron_expression(self) -> str | None:
        value = self.cleaned_data.get("cron_expression")
        return " ".join(value.split()) or None if isinstance(value, str) else value

    def _post_clean(self) -> None:
        super()._post_clean()
        # The service's own validation, so that admin and API accept and refuse the same tasks.
        try:
            task_validate(task=self.instance)
        except ValidationError as error:
            for field, messages in error.message_dict.items():
                target = field if field in self.fields else None
                if target is not None and target in self.errors:
                    continue  # the field already shows why; the service would repeat it
                if field == NON_FIELD_ERRORS and self.non_field_errors():
                    continue
                for message in messages:
                    self.add_error(target, message)
        self._check_work()
        self._check_disable()

    def _check_work(self) -> None:
        """A command in the config (or a changed command) needs the command permission: a field error here,
        before the service would refuse the save."""
        if "config" in self.errors or "task_type" in self.errors:
            return
        stored = None
        if self.instance.pk is not None:
            stored = ScheduledTask.objects.filter(pk=self.instance.pk).values_list("task_type", "config").first()
        try:
            task_work_check(
                actor=self.actor, work=Work.of(self.instance), before=Work(*stored) if stored is not None else None
            )
        except PermissionDenied as error:
            self.add_error("config" if "config" in self.fields else None, error.message)

    def _check_disable(self) -> None:
        """Disabling a step of an enabled workflow is refused by the service; say so on the field."""
        if not self.instance.pk or self.instance.enabled or "enabled" in self.errors:
            return
        was_enabled = ScheduledTask.objects.filter(pk=self.instance.pk, enabled=True).exists()
        users = [workflow for workflow in workflows_using_task(task_id=self.instance.pk) if workflow.enabled]
        if was_enabled and users:
            names = ", ".join(f'"{workflow.name}"' for workflow in users)
            self.add_error("enabled", gettext(TASK_DISABLE_USED_BY_WORKFLOW) % {"names": names})


class RunWithParametersForm(forms.Form):
    """Run now with some config keys replaced for this run only; checked by the service (task_trigger)."""

    config = PrettyJSONField(
        label=gettext_lazy("Parameters for this run"),
        initial=dict,
        help_text=gettext_lazy("A JSON object: its keys replace the task's config keys for this run only."),
        widget=forms.Textarea(attrs={"rows": 10, "cols": 80, "class": "zq-json", "spellcheck": "false"}),
    )

    def clean_config(self) -> dict[str, Any]:
        value = self.cleaned_data["config"]
        if not isinstance(value, dict):
            raise ValidationError(gettext("The config must be a JSON object, for example {}."))
        return value
