"""The ceiling: a bare Flask app with one route returning a short text (bench/run.py).

Served by the same gunicorn settings (bench/gunicorn.conf.py) and loaded by the same wrk settings as the
portal, so each portal endpoint can be read as a share of what this machine, gunicorn and Flask can do at
all: ``gunicorn --config bench/gunicorn.conf.py bench.baseline_app:app``.
"""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "ok"


@app.get("/healthz")
def health():
    return {"status": "ok"}
