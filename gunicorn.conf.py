"""gunicorn settings for production: `gunicorn portal.wsgi` reads this file by itself.

Environment: GUNICORN_BIND (default 127.0.0.1:8000, behind the TLS proxy), WEB_CONCURRENCY
(worker processes, default 2 per core + 1).
"""

import multiprocessing
import os

from gunicorn.http import wsgi

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
# Pages only read the database: no request needs long; SignalWire is called by Celery only.
timeout = 30
graceful_timeout = 30
# Recycle workers now and then, so a slow leak never grows without bound.
max_requests = 2000
max_requests_jitter = 200
# The proxy sets X-Forwarded-Proto; Django trusts it (SECURE_PROXY_SSL_HEADER).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"

# No "Server: gunicorn" header: it tells a scanner which server to try its exploits on, and
# gunicorn has no setting for it (it adds the header itself and drops one set by Django).
_headers_with_server = wsgi.Response.default_headers


def _headers_without_server(response: wsgi.Response) -> list[str]:
    return [line for line in _headers_with_server(response) if not line.startswith("Server:")]


wsgi.Response.default_headers = _headers_without_server
