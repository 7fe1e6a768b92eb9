"""Over HTTP, what a user of the fresh project sees (scripts/fresh_project.sh runs this; standard library only).

    python fresh_project_checks.py BASE_URL EMAIL PASSWORD EXPIRED_SESSIONS

A token from the project's own token view; a bad action config refused with its field named; an action
task run on demand, and a scheduled task fired by runscheduler, both seen through the API; the admin's
task and execution lists, forms, live progress and dashboard as the superuser (session login), calling
the API where this project mounts it; the app's static files. Exits non-zero with one line on failure.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

API = "/api/scheduler/"
ADMIN = "/backoffice/"
TERMINAL = {"success", "failed", "completed", "terminated", "skipped"}
WAIT_SECONDS = 60.0
ACTION = "clear_expired_sessions"  # the README's example action


class Failed(Exception):
    pass


class Browser:
    """An HTTP client with a cookie jar (the admin's session) and an optional API token."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def request(self, method: str, path: str, body: dict | None = None, form: dict | None = None):
        headers = {"Accept": "application/json"} if body is not None or path.startswith(API) else {}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        elif form is not None:
            data, headers["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
            headers["Referer"] = self.base + path  # Django's CSRF check wants it on https; harmless here
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace"), error.headers.get("Content-Type", "")

    def json(self, method: str, path: str, body: dict | None = None, expect: int = 200) -> dict:
        status, text, _ = self.request(method, path, body=body)
        if status != expect:
            raise Failed(f"{method} {path}: expected {expect}, got {status}: {text[:300]}")
        return json.loads(text) if text else {}

    def page(self, path: str, *needles: str) -> str:
        status, text, _ = self.request("GET", path)
        if status != 200:
            raise Failed(f"GET {path}: expected 200, got {status}: {text[:300]}")
        for needle in needles:
            if needle not in text:
                raise Failed(f"GET {path}: the page does not contain {needle!r}")
        return text


def wait_for(what: str, probe, seconds: float = WAIT_SECONDS):
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failed(f"gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(0.2)


def finished(client: Browser, execution_id: int):
    def probe():
        execution = client.json("GET", f"{API}executions/{execution_id}/")
        return execution if execution["status"] in TERMINAL else None

    return probe


def check_api(base: str, email: str, password: str, expired_sessions: int) -> dict:
    anonymous = Browser(base)
    status, _, _ = anonymous.request("GET", f"{API}tasks/")
    if status != 401:
        raise Failed(f"an anonymous GET {API}tasks/ answered {status}, not 401")
    token = anonymous.json("POST", "/api/token/", {"username": email, "password": password})["token"]
    client = Browser(base, token=token)

    refused = client.json(
        "POST",
        f"{API}tasks/",
        {"name": "bad", "task_type": "manual_task", "config": {"task_action": ACTION, "batch_size": 0}},
        expect=400,
    )
    if "config" not in refused or "batch_size" not in json.dumps(refused["config"]):
        raise Failed(f"a batch_size of 0 was refused without naming it: {refused}")

    cleanup = client.json(
        "POST",
        f"{API}tasks/",
        {"name": "clear sessions", "task_type": "manual_task", "config": {"task_action": ACTION, "batch_size": 2}},
        expect=201,
    )
    if cleanup["created_by_username"] != email:
        raise Failed(f"created_by_username is {cleanup['created_by_username']!r}, not the user's e-mail")
    run = client.json("POST", f"{API}tasks/{cleanup['id']}/trigger/", expect=202)
    done = wait_for("the action to finish", finished(client, run["id"]))
    if done["status"] != "success" or done["result"].get("delete_count") != expired_sessions:
        raise Failed(f"the action's run ended {done['status']} with {done['result']} (error: {done['error_message']})")
    if done["triggered_by"] is None:
        raise Failed("the run does not say who triggered it")

    ticking = client.json(
        "POST",
        f"{API}tasks/",
        {
            "name": "every second",
            "task_type": "common_task",
            "interval_seconds": 1,
            "config": {"task_action": "example_task", "duration_seconds": 0, "steps": 1, "message": "tick"},
        },
        expect=201,
    )

    def fired():
        page = client.json("GET", f"{API}tasks/{ticking['id']}/executions/?status=success&page_size=5")
        return [row for row in page["results"] if row["trigger"] == "schedule"]

    scheduled = wait_for("runscheduler to fire the interval task", fired)
    client.json("POST", f"{API}tasks/{ticking['id']}/disable/")
    status = client.json("GET", f"{API}scheduler/status/")
    if not status["online"]:
        raise Failed(f"the scheduler status says no scheduler is online: {status}")
    return {"cleanup": cleanup, "run": done, "ticking": ticking, "scheduled": scheduled[0]}


def check_admin(base: str, email: str, password: str, seen: dict) -> None:
    browser = Browser(base)
    login = browser.page(f"{ADMIN}login/")
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login)
    if not match:
        raise Failed("the admin login page has no CSRF token")
    form = {"csrfmiddlewaretoken": match[1], "username": email, "password": password, "next": ADMIN}
    status, text, _ = browser.request("POST", f"{ADMIN}login/", form=form)
    if status != 200 or "Log out" not in text:  # urllib follows the redirect to the index
        raise Failed(f"the admin login failed ({status})")
    tasks = f"{ADMIN}scheduler_app/scheduledtask/"
    executions = f"{ADMIN}scheduler_app/taskexecution/"
    browser.page(f"{ADMIN}", "scheduler_app/scheduledtask/")
    browser.page(tasks, "clear sessions", "every second", "scheduler_app/admin.css")
    browser.page(executions, "clear sessions", "every second")
    browser.page(
        f"{tasks}{seen['cleanup']['id']}/change/",
        f"{API}schedules/preview/",  # the task form's live checks call the API where it is mounted
        f"{API}workflows/validate/",
        "clear_expired_sessions",
    )
    browser.page(f"{tasks}add/", f"{API}schedules/preview/")
    browser.page(f"{executions}{seen['run']['id']}/change/", "expired sessions deleted")
    browser.page(f"{tasks}dashboard/", "every second")
    status, text, content_type = browser.request("GET", f"{executions}progress/?ids={seen['scheduled']['id']}")
    if status != 200 or "json" not in content_type:
        raise Failed(f"the admin's live progress answered {status} {content_type}: {text[:200]}")
    for asset in ("scheduler_app/admin.css", "scheduler_app/live.js", "scheduler_app/task_form.js"):
        status, _, _ = browser.request("GET", f"/static/{asset}")
        if status != 200:
            raise Failed(f"the static file {asset} answered {status}: it is not in the package")


def main(argv: list[str]) -> None:
    base, email, password, expired = argv[1], argv[2], argv[3], int(argv[4])
    try:
        seen = check_api(base, email, password, expired)
        check_admin(base, email, password, seen)
    except Failed as error:
        raise SystemExit(f"fresh project: FAILED: {error}") from None
    print(
        f"fresh project: API (token, 400 on a bad config, run now #{seen['run']['id']}, scheduled run "
        f"#{seen['scheduled']['id']}) and admin pages (lists, forms, progress, dashboard, static files) OK"
    )


if __name__ == "__main__":
    main(sys.argv)
