"""The load engine: runs in worker processes and never imports the UI (see tests/test_imports.py)."""
