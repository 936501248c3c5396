"""The Textual dashboard: plan picker, live dashboard, results view.

Entry points (called by ``perftui.cli`` and ``perftui.sessions``): ``perftui.ui.app.run_dashboard``,
``perftui.ui.app.run_picker`` and ``perftui.ui.app.run_attached``. The UI only consumes the engine:
it reads the coordinator's session record (or an attached viewer's replica of it) on its own
timers and calls the coordinator's control API.
"""
