"""Gunicorn settings for the zquant scheduler site: `gunicorn -c deploy/gunicorn.conf.py` from the checkout.

Every value can be changed from the environment (the systemd units read /etc/zquant/zquant.env), so the
same file serves a systemd host, a Procfile platform and the tests. Gunicorn's own GUNICORN_CMD_ARGS and
command-line options still win over this file.
"""

import os

# The WSGI application; the web server serves the site only, the scheduler is its own process
# (`manage.py runscheduler`, deploy/systemd/zquant-scheduler.service).
wsgi_app = "zquant_site.wsgi:application"

# Where to listen: GUNICORN_BIND ("127.0.0.1:8000", "unix:/run/zquant-web/gunicorn.sock", or several
# separated by commas); else all addresses on $PORT, as platforms that run a Procfile expect; else
# loopback only, for a reverse proxy on the same machine.
if os.environ.get("GUNICORN_BIND"):
    bind = [address.strip() for address in os.environ["GUNICORN_BIND"].split(",") if address.strip()]
elif os.environ.get("PORT"):
    bind = [f"0.0.0.0:{os.environ['PORT']}"]
else:
    bind = ["127.0.0.1:8000"]

# Workers: 2 x cores + 1 (gunicorn's rule of thumb). A request spends part of its time waiting on the
# database, so a little more than one process per core keeps the cores busy; many more only adds memory
# (each worker is a full Django process, ~60-80 MB) and database connections (one per worker, or per
# thread). Cores are the ones this process may run on (taskset, cgroup cpusets), not the machine's.
cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
workers = int(os.environ.get("GUNICORN_WORKERS", 2 * cores + 1))
# Sync workers by default: each request is short (one page of the API or the admin) and a reverse proxy
# buffers slow clients. GUNICORN_THREADS > 1 switches to the threaded worker (less memory per concurrent
# request; the API throttles and Django are thread-safe).
threads = int(os.environ.get("GUNICORN_THREADS", 1))

# Timeouts. A worker silent for this many seconds is killed and replaced: longer than any page should
# take (the slowest API reads are ~100 ms at 10,000 tasks), short enough that a stuck worker frees up.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
# On SIGTERM (systemctl stop, a deploy) workers finish the requests they have for up to this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
# Idle keep-alive seconds (threaded worker; sync workers close after each response): a little longer
# than nothing, so a proxy reusing connections does not race the close.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 5))

# Each worker is replaced after about this many requests (jittered, so they do not restart together):
# a bound on any slow growth of memory. 0 turns it off.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 1000))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", 100))

# Logs on stdout/stderr (journald under systemd, the platform's log elsewhere). The access log says the
# client (the proxy's X-Forwarded-For when there is one), the user, the request line, status, size,
# referrer, user agent and the time taken in milliseconds. The API token travels in the Authorization
# header, which is never logged.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = os.environ.get("GUNICORN_ERROR_LOG", "-")
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%(h)s "%({x-forwarded-for}i)s" %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'

# Proxies whose X-Forwarded-* headers gunicorn believes (for wsgi.url_scheme); the site's own
# SECURE_PROXY_SSL_HEADER and NUM_PROXIES settings decide what Django believes.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Workers' heartbeat files in memory: a worker whose disk stalls is not taken for a stuck one.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

proc_name = "zquant-web"
