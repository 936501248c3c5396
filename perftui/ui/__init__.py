"""The Textual dashboard: plan picker, live dashboard, results view.

Entry points (called by ``perftui.cli``): ``perftui.ui.app.run_dashboard`` and
``perftui.ui.app.run_picker``. The UI only consumes the engine: it reads the coordinator's
session record on its own timers and calls the coordinator's control API.
"""
