"""Who may do what: the one permission rule of the admin, the API, the commands and any later entry point.

Django's model permissions decide, as `user.has_perm()` answers them (the user's own permissions and
those of their groups): an active superuser has every permission, an inactive user none, and
`is_staff` grants nothing here (the admin asks for it before anyone signs in, as Django does, and then
applies these same rules).

| rule               | needs                                                                  |
|--------------------|------------------------------------------------------------------------|
| TASK_VIEW          | view_scheduledtask (or change_scheduledtask, as in Django's admin)     |
| TASK_ADD           | add_scheduledtask                                                      |
| TASK_CHANGE        | change_scheduledtask                                                   |
| TASK_DELETE        | delete_scheduledtask                                                   |
| TASK_COPY          | add_scheduledtask and TASK_VIEW (a copy shows what it copied)          |
| TASK_RUN           | run_scheduledtask                                                      |
| TASK_COMMAND       | change_command_scheduledtask, on top of add or change (see below)      |
| TASK_FORM          | view, add or change scheduledtask (the task form's live checks)        |
| EXECUTION_VIEW     | view_taskexecution (or change_taskexecution)                           |
| EXECUTION_CONTROL  | run_scheduledtask and EXECUTION_VIEW (a control answers with the run)  |
| EXECUTION_DELETE   | delete_taskexecution                                                   |
| DASHBOARD          | TASK_VIEW and EXECUTION_VIEW                                           |
| SCHEDULER_VIEW     | view_schedulernode (or change_schedulernode)                           |
| SCHEDULER_DELETE   | delete_schedulernode                                                   |
| CALENDAR_VIEW      | view_calendar (or change_calendar)                                     |
| CALENDAR_ADD       | add_calendar                                                           |
| CALENDAR_CHANGE    | change_calendar (its listed days too, also those of a new calendar)    |
| CALENDAR_DELETE    | delete_calendar                                                        |
| BLACKOUT_VIEW      | view_blackoutwindow (or change_blackoutwindow)                         |
| BLACKOUT_ADD       | add_blackoutwindow                                                     |
| BLACKOUT_CHANGE    | change_blackoutwindow                                                  |
| BLACKOUT_DELETE    | delete_blackoutwindow                                                  |
| SUBSCRIPTION_VIEW  | view_notificationsubscription (or change_notificationsubscription)     |
| SUBSCRIPTION_ADD   | add_notificationsubscription                                           |
| SUBSCRIPTION_CHANGE| change_notificationsubscription                                        |
| SUBSCRIPTION_DELETE| delete_notificationsubscription                                        |
| EVENT_VIEW         | view_notificationevent (or change_notificationevent)                   |
| EVENT_DELETE       | delete_notificationevent and delete_notificationdelivery (they go too) |
| DELIVERY_VIEW      | view_notificationdelivery (or change_notificationdelivery)             |
| DELIVERY_DELETE    | delete_notificationdelivery                                            |
| METRICS_VIEW       | EXECUTION_VIEW and SCHEDULER_VIEW (or the metrics token, in the API)   |

A calendar's listed days are part of it (one service call replaces them), so CALENDAR_CHANGE decides
them, not CalendarDay's own model permissions. Notification events and deliveries are records
the scheduler writes: they are seen and deleted, never added or changed by hand, by anyone. The
metrics count runs by task (what EXECUTION_VIEW shows) and name the leading process's host and pid
(what SCHEDULER_VIEW shows), so they need both; Prometheus, which has no user, presents
SCHEDULER_METRICS_TOKEN instead (api/metrics.py).

What a task runs (`Work`: its type and config) is checked by `task_work_check()`. Creating a task
that runs a program of its own (a command, or a task type beyond the built-in action and workflow
types), or changing the type or config of a task that runs or would run one, needs TASK_COMMAND:
whoever may do that may run any program the site allows, as the command user, so it is a separate
grant from editing when and how tasks run. Actions and workflows are not programs of their own: an
action is the site's code, its parameters parsed and bounded by that code, and a workflow runs other
tasks exactly as their configs say (its steps decide only when they run, as a schedule does), so add
and change suffice for them.

The services check every write and are the authority; an entry point's own check (the API's
permission class, the admin's has_*_permission methods) is a fast first answer with the same rules.
Reads have no services: entry points check the read rules before they call a selector, because the
selectors also serve the scheduler process, which no user is behind.

The system: `SYSTEM` is the actor of the server's own commands (init_scheduler, scripts run on the
server), and may do everything. Only code on the server can name it; the admin and the API pass the
request's user. `None` is nobody and is refused, so an entry point that forgets its user gets a
refusal, never the system's rights.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from scheduler_app.exceptions import PermissionDenied
from scheduler_app.models import ScheduledTask

APP = "scheduler_app"
VIEW_TASK = f"{APP}.view_scheduledtask"
ADD_TASK = f"{APP}.add_scheduledtask"
CHANGE_TASK = f"{APP}.change_scheduledtask"
DELETE_TASK = f"{APP}.delete_scheduledtask"
RUN_TASK = f"{APP}.run_scheduledtask"
COMMAND_TASK = f"{APP}.change_command_scheduledtask"
VIEW_EXECUTION = f"{APP}.view_taskexecution"
CHANGE_EXECUTION = f"{APP}.change_taskexecution"
DELETE_EXECUTION = f"{APP}.delete_taskexecution"
VIEW_NODE = f"{APP}.view_schedulernode"
CHANGE_NODE = f"{APP}.change_schedulernode"
DELETE_NODE = f"{APP}.delete_schedulernode"
VIEW_CALENDAR = f"{APP}.view_calendar"
ADD_CALENDAR = f"{APP}.add_calendar"
CHANGE_CALENDAR = f"{APP}.change_calendar"
DELETE_CALENDAR = f"{APP}.delete_calendar"
VIEW_BLACKOUT = f"{APP}.view_blackoutwindow"
ADD_BLACKOUT = f"{APP}.add_blackoutwindow"
CHANGE_BLACKOUT = f"{APP}.change_blackoutwindow"
DELETE_BLACKOUT = f"{APP}.delete_blackoutwindow"
VIEW_SUBSCRIPTION = f"{APP}.view_notificationsubscription"
ADD_SUBSCRIPTION = f"{APP}.add_notificationsubscription"
CHANGE_SUBSCRIPTION = f"{APP}.change_notificationsubscription"
DELETE_SUBSCRIPTION = f"{APP}.delete_notificationsubscription"
VIEW_EVENT = f"{APP}.view_notificationevent"
CHANGE_EVENT = f"{APP}.change_notificationevent"
DELETE_EVENT = f"{APP}.delete_notificationevent"
VIEW_DELIVERY = f"{APP}.view_notificationdelivery"
CHANGE_DELIVERY = f"{APP}.change_notificationdelivery"
DELETE_DELIVERY = f"{APP}.delete_notificationdelivery"

PERMISSION_DENIED = _("You do not have permission to %(action)s (it needs %(permissions)s).")
PERMISSIONS_ONE_OF = _("one of %(names)s")
PERMISSIONS_AND = _("%(first)s and %(second)s")


class System:
    """The server acting for its operator (management commands): allowed everything, recorded as no user."""

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM: Final = System()

Actor = AbstractBaseUser | AnonymousUser | System | None


def recorded_user(actor: Actor) -> AbstractBaseUser | None:
    """The user to record as creator, editor or trigger of something: a signed-in user, else nobody."""
    return actor if isinstance(actor, AbstractBaseUser) and actor.is_authenticated else None


def _needs_text(needs: Sequence[Sequence[str]]) -> str:
    """'"a.x" and one of "a.y", "a.z"': what a rule needs, for its refusal."""
    parts = [
        f'"{group[0]}"'
        if len(group) == 1
        else gettext(PERMISSIONS_ONE_OF) % {"names": ", ".join(f'"{name}"' for name in group)}
        for group in needs
    ]
    text = parts[0]
    for part in parts[1:]:
        text = gettext(PERMISSIONS_AND) % {"first": text, "second": part}
    return text


@dataclass(frozen=True)
class Rule:
    """What an operation needs: every group of `needs`, each group satisfied by any one of its permissions."""

    action: Promise  # what the operation is, for the refusal: "delete tasks"
    needs: tuple[tuple[str, ...], ...]

    def allows(self, actor: Actor) -> bool:
        if actor is SYSTEM:
            return True
        if actor is None or not actor.is_authenticated or not actor.is_active:
            return False
        return all(any(actor.has_perm(permission) for permission in group) for group in self.needs)

    def check(self, actor: Actor) -> None:
        """Raise PermissionDenied (HTTP 403) naming what is missing, unless the actor may."""
        if not self.allows(actor):
            raise PermissionDenied(
                gettext(PERMISSION_DENIED) % {"action": self.action, "permissions": _needs_text(self.needs)}
            )


_TASK_SEEN = (VIEW_TASK, CHANGE_TASK)
_EXECUTION_SEEN = (VIEW_EXECUTION, CHANGE_EXECUTION)

TASK_VIEW = Rule(_("see tasks"), (_TASK_SEEN,))
TASK_ADD = Rule(_("create tasks"), ((ADD_TASK,),))
TASK_CHANGE = Rule(_("change tasks"), ((CHANGE_TASK,),))
TASK_DELETE = Rule(_("delete tasks"), ((DELETE_TASK,),))
TASK_COPY = Rule(_("copy tasks"), ((ADD_TASK,), _TASK_SEEN))
TASK_RUN = Rule(_("run tasks"), ((RUN_TASK,),))
TASK_COMMAND = Rule(_("create or change command tasks"), ((COMMAND_TASK,),))
TASK_FORM = Rule(_("check schedules and workflow configs"), ((VIEW_TASK, ADD_TASK, CHANGE_TASK),))
EXECUTION_VIEW = Rule(_("see executions"), (_EXECUTION_SEEN,))
EXECUTION_CONTROL = Rule(_("control executions"), ((RUN_TASK,), _EXECUTION_SEEN))
EXECUTION_DELETE = Rule(_("delete executions"), ((DELETE_EXECUTION,),))
DASHBOARD = Rule(_("see the dashboard"), (_TASK_SEEN, _EXECUTION_SEEN))
SCHEDULER_VIEW = Rule(_("see the scheduler processes"), ((VIEW_NODE, CHANGE_NODE),))
SCHEDULER_DELETE = Rule(_("delete scheduler processes"), ((DELETE_NODE,),))
CALENDAR_VIEW = Rule(_("see calendars"), ((VIEW_CALENDAR, CHANGE_CALENDAR),))
CALENDAR_ADD = Rule(_("create calendars"), ((ADD_CALENDAR,),))
CALENDAR_CHANGE = Rule(_("change calendars"), ((CHANGE_CALENDAR,),))
CALENDAR_DELETE = Rule(_("delete calendars"), ((DELETE_CALENDAR,),))
BLACKOUT_VIEW = Rule(_("see blackout windows"), ((VIEW_BLACKOUT, CHANGE_BLACKOUT),))
BLACKOUT_ADD = Rule(_("create blackout windows"), ((ADD_BLACKOUT,),))
BLACKOUT_CHANGE = Rule(_("change blackout windows"), ((CHANGE_BLACKOUT,),))
BLACKOUT_DELETE = Rule(_("delete blackout windows"), ((DELETE_BLACKOUT,),))
SUBSCRIPTION_VIEW = Rule(_("see notification subscriptions"), ((VIEW_SUBSCRIPTION, CHANGE_SUBSCRIPTION),))
SUBSCRIPTION_ADD = Rule(_("create notification subscriptions"), ((ADD_SUBSCRIPTION,),))
SUBSCRIPTION_CHANGE = Rule(_("change notification subscriptions"), ((CHANGE_SUBSCRIPTION,),))
SUBSCRIPTION_DELETE = Rule(_("delete notification subscriptions"), ((DELETE_SUBSCRIPTION,),))
EVENT_VIEW = Rule(_("see notification events"), ((VIEW_EVENT, CHANGE_EVENT),))
EVENT_DELETE = Rule(_("delete notification events"), ((DELETE_EVENT,), (DELETE_DELIVERY,)))
DELIVERY_VIEW = Rule(_("see notification deliveries"), ((VIEW_DELIVERY, CHANGE_DELIVERY),))
DELIVERY_DELETE = Rule(_("delete notification deliveries"), ((DELETE_DELIVERY,),))
METRICS_VIEW = Rule(_("read the metrics"), (_EXECUTION_SEEN, (VIEW_NODE, CHANGE_NODE)))

# The task types whose work the site's own code defines: actions (common and manual tasks without a
# command) and workflows (other tasks). Any other type is another app's executor, which may run anything.
ACTION_TASK_TYPES = (ScheduledTask.TaskType.COMMON_TASK, ScheduledTask.TaskType.MANUAL_TASK)


class Work(NamedTuple):
    """What a task runs: its type and its config."""

    task_type: str
    config: Any

    @classmethod
    def of(cls, task: ScheduledTask) -> Work:
        return cls(task.task_type, task.config)

    @property
    def runs_program(self) -> bool:
        """A command (a "command" key, even an empty one, counts: the check must not depend on what the
        validator accepts), or a task type other than the built-in ones."""
        if self.task_type == ScheduledTask.TaskType.WORKFLOW:
            return False
        if self.task_type in ACTION_TASK_TYPES:
            return isinstance(self.config, dict) and "command" in self.config
        return True


def _same_json(first: Any, second: Any) -> bool:
    # Canonical text, not ==: in Python 1 == 1.0 == True, and a command's "1" must not pass for its "true".
    def canonical(value: Any) -> str:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)

    return canonical(first) == canonical(second)


def task_work_allowed(*, actor: Actor, work: Work, before: Work | None) -> bool:
    """Whether the actor may give a task this work; `before` is what it runs as stored (None: a new task).

    TASK_COMMAND is needed to create a task that runs a program, and to change the type or config of a
    task that runs or would run one (turning a command task into an action task changes what it runs too).
    """
    if before is None:
        needed = work.runs_program
    else:
        changed = before.task_type != work.task_type or not _same_json(before.config, work.config)
        needed = changed and (work.runs_program or before.runs_program)
    return not needed or TASK_COMMAND.allows(actor)


def task_work_check(*, actor: Actor, work: Work, before: Work | None) -> None:
    """task_work_allowed(), raising PermissionDenied (naming TASK_COMMAND) when it is not."""
    if not task_work_allowed(actor=actor, work=work, before=before):
        TASK_COMMAND.check(actor)
