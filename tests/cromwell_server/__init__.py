"""A Cromwell-compatible REST server for Ferry's tests (issue 6).

Cromwell's jar can't be fetched here, so this server speaks Cromwell's REST API (v1) and
really runs each workflow with ``miniwdl run`` on the local Docker engine (one-node swarm).
Outputs are uploaded to an S3 bucket and reported as ``s3://`` URIs (or, with
``--outputs local``, as local paths). ``--simulate`` runs nothing: workflows move along the
clock, for polling benchmarks with thousands of workflows.

Run it as a process::

    python -m tests.cromwell_server --port 8123 --work-dir /tmp/cw \\
        --s3-endpoint http://127.0.0.1:9000 --bucket cromwell-executions

(S3 keys from ``--config FILE`` or ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``.)

Besides Cromwell's routes, ``/_test/`` controls the server: ``POST /_test/faults``
(``status_503_next``, ``drop_next``, ``down``, ``delay_s``, ``no_describe``, ``submit_lag_s``,
``query_lag_s``, ``abort_lag_s``),
``GET /_test/counters``, ``POST /_test/reset``, ``POST /_test/simulate_bulk``,
``GET|POST /_test/settings`` (simulation timings), ``GET|POST /_test/documents`` (Cromwell's
describe answer and a runnable stand-in for a document miniwdl refuses: ``documents.py``) and
``GET /_test/info``; README.md says
what each switch does and where this server can't stand in for a real Cromwell.
Workflow records are saved under ``<work-dir>/records`` and reloaded at start; unfinished real
runs are rerun. The pytest fixtures are in ``tests/harness/cromwell.py``.
"""
