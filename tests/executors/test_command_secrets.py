"""Secrets of command tasks: named in env_from, valued by the server, redacted from what is kept."""

from __future__ import annotations

import hashlib
import json

import pytest

from scheduler_app.conf import scheduler_settings
from scheduler_app.executors import validate_config
from scheduler_app.executors.command_secrets import Redactor
from tests.executors.helpers import python_command, run_config

TOKEN = "tk-8f2b9c6e4d1a7f30"
OTHER = "pw-33a1c0de77"


@pytest.fixture
def secrets(settings):
    settings.SCHEDULER_SECRETS = {"tushare_token": TOKEN}
    settings.SCHEDULER_SECRET_DB_PASSWORD = OTHER
    return settings


# ---------------------------------------------------------------------- settings and validation


def test_secrets_come_from_the_dict_and_from_one_setting_each(secrets):
    assert scheduler_settings.SECRETS == {"tushare_token": TOKEN, "db_password": OTHER}


def test_secrets_may_come_as_json_text_from_the_environment(settings):
    settings.SCHEDULER_SECRETS = json.dumps({"Api_Key": "k-123"})
    assert scheduler_settings.SECRETS == {"api_key": "k-123"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "env_from",
    [{"TUSHARE_TOKEN": "tushare_token"}, {"TOKEN": "TUSHARE_TOKEN"}, ["tushare_token", "DB_PASSWORD"]],
)
def test_known_secret_names_are_accepted(secrets, env_from):
    assert validate_config("manual_task", {"command": "python -c pass", "env_from": env_from}) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("env_from", "error"),
    [
        ({"TOKEN": "no_such_secret"}, "env_from: 'no_such_secret' is not a secret of this server."),
        (["no_such_secret"], "env_from: 'no_such_secret' is not a secret of this server."),
        ({"LD_PRELOAD": "tushare_token"}, "env_from: LD_PRELOAD changes which code a program loads or runs"),
        ({"PATH": "tushare_token"}, "env_from: PATH is set by the scheduler."),
        ({"TOKEN": 3}, "env_from: 3 is not a secret of this server."),
        ("tushare_token", "env_from must be a list of secret names or an object"),
    ],
)
def test_unknown_secrets_and_bad_names_are_refused_at_save(secrets, env_from, error):
    [found] = validate_config("manual_task", {"command": "python -c pass", "env_from": env_from})
    assert found.startswith(error)


@pytest.mark.django_db
def test_a_variable_in_env_and_env_from_is_refused(secrets):
    config = {"command": "python -c pass", "env": {"TOKEN": "x"}, "env_from": {"TOKEN": "tushare_token"}}
    assert validate_config("manual_task", config) == ["TOKEN is set in both env and env_from."]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast")
def test_a_secret_removed_from_the_server_fails_the_run(secrets):
    del secrets.SCHEDULER_SECRETS
    execution = run_config({"command": "python -c pass", "env_from": ["tushare_token"]}, max_retries=0)
    assert execution.status == "failed"
    assert "'tushare_token' is not a secret of this server" in execution.error_message


# ---------------------------------------------------------------------- the run

LEAKY = r"""
import hashlib, os, sys, time
from scheduler_app.client import get_client
token = os.environ["TUSHARE_TOKEN"]
client = get_client()
print("sha256", hashlib.sha256(token.encode()).hexdigest(), flush=True)
half = len(token) // 2
sys.stdout.write("token=" + token[:half]); sys.stdout.flush()   # one value, two reads
time.sleep(0.3)
sys.stderr.write("[stderr between the halves]\n"); sys.stderr.flush()
time.sleep(0.3)
sys.stdout.write(token[half:] + "\n"); sys.stdout.flush()
client.progress(processed=1, total=2, current_item=token, message="using " + token)
time.sleep(0.3)
client.result(message="done with " + token, total=2)
print("traceback: Authorization: Bearer " + token, file=sys.stderr, flush=True)
sys.exit(1)
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast")
def test_a_printed_secret_is_redacted_in_output_result_and_error(secrets):
    execution = run_config({"command": python_command(LEAKY), "env_from": ["TUSHARE_TOKEN"]}, max_retries=0)
    assert execution.status == "failed"
    marker = "[redacted:tushare_token]"
    # The child really had the value.
    assert f"sha256 {hashlib.sha256(TOKEN.encode()).hexdigest()}" in execution.output_tail
    kept = {
        "output_tail": execution.output_tail,
        "result": json.dumps(execution.result, ensure_ascii=False),
        "error_message": execution.error_message,
        "current_item": execution.current_item,
    }
    for name, text in kept.items():
        assert TOKEN not in text, name
        assert TOKEN[: len(TOKEN) // 2] not in text, name
    # The stdout half that could begin the value waits (stderr goes on meanwhile); then the whole is redacted.
    stdout_only = execution.output_tail.replace("[stderr between the halves]\n", "")
    assert f"token={marker}\n" in stdout_only
    assert f"Authorization: Bearer {marker}" in execution.error_message
    assert execution.result["message"] == "command failed with exit code 1"
    assert f"Bearer {marker}" in execution.result["error_summary"]
    assert execution.current_item == marker


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("fast")
def test_a_reported_result_is_redacted(secrets):
    code = (
        "import os; from scheduler_app.client import get_client; "
        "get_client().result(message='token ' + os.environ['TOKEN'])"
    )
    execution = run_config({"command": python_command(code), "env_from": {"TOKEN": "tushare_token"}})
    assert execution.status == "success", execution.error_message
    assert execution.result["message"] == "token [redacted:tushare_token]"


# ---------------------------------------------------------------------- the redactor itself


def feed_in_pieces(redactor: Redactor, data: bytes, cuts: list[int]) -> bytes:
    stream = redactor.stream()
    pieces = [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return b"".join(stream.feed(piece) for piece in pieces) + stream.flush()


def test_a_value_split_at_any_point_is_redacted():
    redactor = Redactor({"token": TOKEN})
    data = f"before {TOKEN} middle {TOKEN}{TOKEN} after".encode()
    expected = b"before [redacted:token] middle [redacted:token][redacted:token] after"
    for cut in range(1, len(data)):
        assert feed_in_pieces(redactor, data, [cut]) == expected, cut
    for cut in range(1, len(data) - 3, 3):
        assert feed_in_pieces(redactor, data, [cut, cut + 1, cut + 3]) == expected, cut


def test_a_value_that_begins_another_is_redacted_whole():
    redactor = Redactor({"short": "abc", "long": "abcdef"})
    data = b"x abcdef y abc z abcde"
    expected = b"x [redacted:long] y [redacted:short] z [redacted:short]de"
    for cut in range(1, len(data)):
        assert feed_in_pieces(redactor, data, [cut]) == expected, cut


def test_output_without_secrets_passes_unchanged_and_undelayed():
    stream = Redactor({}).stream()
    assert stream.feed(b"abc") == b"abc"
    stream = Redactor({"token": TOKEN}).stream()
    assert stream.feed(b"nothing like it\n") == b"nothing like it\n"
    assert stream.feed(b"ends with tk-8") == b"ends with "  # could be the token: held back
    assert stream.feed(b"0 after") == b"tk-80 after"


def test_values_in_results_are_redacted_everywhere():
    redactor = Redactor({"token": TOKEN})
    value = {"message": f"x{TOKEN}", "nested": [TOKEN, {TOKEN: 1}], "count": 3}
    assert redactor.value(value) == {
        "message": "x[redacted:token]",
        "nested": ["[redacted:token]", {"[redacted:token]": 1}],
        "count": 3,
    }
