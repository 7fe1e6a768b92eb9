"""The scheduler's lists fit common laptop screens with the admin's navigation sidebar open.

At 1366x768 and 1440x900, in English and Chinese, the task, execution and process lists scroll neither the
page nor the table sideways, and the first row's controls are on screen (not clipped by the table's box).
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from scheduler_app.models import ScheduledTask, SchedulerNode
from tests.admin.conftest import make_run
from tests.factories import ScheduledTaskFactory

pytestmark = pytest.mark.django_db(transaction=True)

SIZES = [(1366, 768), (1440, 900)]
LOCALES = ["en-US", "zh-CN"]

MEASURE = """(selector) => {
  const page = document.scrollingElement;
  const box = document.querySelector('#changelist .results');
  const control = document.querySelector(selector);
  const rect = control.getBoundingClientRect();
  const boxRect = box.getBoundingClientRect();
  return {
    page: [page.scrollWidth, page.clientWidth],
    table: [box.scrollWidth, box.clientWidth],
    control: [rect.left, rect.right, rect.top, rect.bottom],
    box: [boxRect.left, boxRect.right],
    viewport: [document.documentElement.clientWidth, window.innerHeight],
    sidebar: document.getElementById('main').classList.contains('shifted'),
    row: control.closest('tr').getBoundingClientRect().height,
  };
}"""


@pytest.fixture
def busy_site():
    """The demo tasks plus the widest rows a list shows: a long name, a pause with an end, runs of every
    kind, and a scheduler process with long names."""
    call_command("init_scheduler", stdout=StringIO())
    now = timezone.now()
    long = ScheduledTaskFactory(
        name="每日收盘后同步全部A股日线与复权因子数据（含停牌股票补齐）",
        cron_expression="30 18 * * 1-5",
        interval_seconds=None,
        paused=True,
        paused_until=now + timedelta(days=2),
    )
    for task in ScheduledTask.objects.order_by("name")[:6]:
        make_run(task, "success")
        make_run(task, "failed", error_message="x" * 300)
    worker = "worker-host-01.example.internal:12345"
    make_run(long, "running", progress_percent=42.5, current_item="600000.SH", worker=worker)
    SchedulerNode.objects.create(
        node_id="scheduler-node-0123456789abcdef0123456789abcdef",
        host="scheduler-host-01.production.example.internal",
        pid=123456,
        is_leader=True,
        started_at=now - timedelta(hours=3),
        last_heartbeat=now,
        jobs=24,
        version_seen=1234567,
    )


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_lists_fit_with_the_sidebar_open(admin_login, live_server, busy_site, locale, width, height):
    page = admin_login("/admin/scheduler_app/scheduledtask/", locale=locale, width=width, height=height)
    lists = {
        "/admin/scheduler_app/scheduledtask/": "#result_list tbody tr:first-child [data-zq-verb=run]",
        "/admin/scheduler_app/taskexecution/": "#result_list tbody tr:first-child td:last-child",
        "/admin/scheduler_app/schedulernode/": "#result_list tbody tr:first-child td:last-child",
    }
    for path, control in lists.items():
        page.goto(f"{live_server.url}{path}")
        found = page.evaluate(MEASURE, control)
        where = f"{path} at {width}x{height} in {locale}: {found}"
        assert found["sidebar"], where  # the navigation sidebar is open
        assert found["page"][0] <= found["page"][1], where  # no sideways scroll of the page
        assert found["table"][0] <= found["table"][1], where  # nor of the table inside it
        left, right, top, bottom = found["control"]
        assert found["box"][0] <= left <= right <= found["box"][1], where  # not clipped by the table's box
        assert right <= found["viewport"][0], where  # and on screen
        assert 0 <= top <= bottom <= found["viewport"][1], where
        assert found["row"] <= 80, where  # compact rows: no column squeezed to a character per line
