"""`make bench`: throughput and latency of the running service, measured with wrk.

Run with `.venv/bin/python -m bench --help` for the options.
"""
