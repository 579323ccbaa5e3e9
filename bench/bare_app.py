"""The yardstick: a bare Flask endpoint that returns a small JSON body.

Served by the same gunicorn.conf.py as the API, in the same run, so that
scans/bare says how much of the stack's own limit (gunicorn + Flask +
Python on these cores) the scan path uses.

    gunicorn --config gunicorn.conf.py --pythonpath bench 'bare_app:app'
"""
from flask import Flask

app = Flask(__name__)


@app.get("/bare")
def bare():
    return {"verdict": "validated", "reason_code": None, "message": "Export validated."}


@app.get("/readyz")
def readyz():
    return {"status": "ready"}
