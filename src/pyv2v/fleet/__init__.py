"""v2v-fleet: many conversions over several conversion servers, on Celery with a Redis broker.

The server side only (it imports v2v, never p2v; p2v boot media do not carry it):
config.py (broker URL, Celery app and its delivery semantics) · store.py (one Redis hash per
job: the status every command reads) · plan.py (YAML/CSV plans → v2v argument lists, checked by
v2v's own parser) · tasks.py (the Celery task running v2v's pipeline) · lease.py (heartbeats that
keep a running job's message invisible and its lease alive) · worker.py (one Celery worker per
conversion server, its concurrency) · view.py (status and report tables) · cli.py (the command).
"""
