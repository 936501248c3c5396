"""What runs inside a worker process, and nothing else.

A worker is ``python -m perftui.worker``: it reads a plan and load shapes from the coordinator,
runs scenario iterations against the target and ships interval snapshots back. This package holds
the worker loop (``main``), the wire messages (``messages``), the HTTP/1.1 transport
(``transport``), HTTP/2 (``h2``), the scenario runner (``scenario``) with its protocol steps
(``ws``, ``rpc``) and the statistics write half (``stats``).

It imports no loader, threshold, monitor, session, journal, run or UI module — only the plan
types (``perftui.plan``), templates, JSON paths, units and summaries. The import contracts in
``pyproject.toml`` (checked by ``tests/test_imports.py``) and a fresh-interpreter test of what
``python -m perftui.worker`` loads keep it that way.
"""
