"""Live outputs of a running test (``perftui.export.prometheus``: ``--metrics-port``)."""
