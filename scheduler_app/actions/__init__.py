"""Actions: named in-process tasks (`config.task_action`). This package is how an app writes one.

    from scheduler_app.actions import ConfigReader, RunContext, action

    def parse(config):                      # optional: check the config, return the parameters
        reader = ConfigReader(config)
        days = reader.integer("days", default=1, minimum=1)
        reader.raise_if_errors()            # ConfigError listing every problem
        return {"days": days}

    @action(
        "cleanup_reports",
        params=parse,
        description="Delete old reports.",
        parameters=[Param("days", INTEGER, default=1, minimum=1, help="Reports older than this many days.")],
    )
    def cleanup_reports(ctx: RunContext, params) -> dict:   # returns the result dict
        ...

`parameters` declares what the action reads (name, type, default, help, required, choices, bounds):
every validation of a task config checks them before `parse` runs, and the action catalogue (the
API's `actions/`, the admin's action picker) shows them as a JSON schema and a form.

Put actions in a module named `scheduler_actions` of your app (found when Django starts) or import
their module from your AppConfig.ready(). `parse` runs when a task is saved (a bad config is refused
then, with the messages it collected) and again before every run. The built-in action is
`example_task`.
"""

from scheduler_app.actions.params import ConfigReader, parse_date
from scheduler_app.exceptions import ConfigError, ExecutionFailed
from scheduler_app.executors.actions import Action, action, get_action, registered_actions, unregister_action
from scheduler_app.executors.base import RunContext
from scheduler_app.executors.catalogue import action_catalogue
from scheduler_app.executors.parameters import BOOLEAN, CODES, DATE, INTEGER, NUMBER, STRING, Param

__all__ = [
    "BOOLEAN",
    "CODES",
    "DATE",
    "INTEGER",
    "NUMBER",
    "STRING",
    "Action",
    "ConfigError",
    "ConfigReader",
    "ExecutionFailed",
    "Param",
    "RunContext",
    "action",
    "action_catalogue",
    "get_action",
    "parse_date",
    "registered_actions",
    "unregister_action",
]
