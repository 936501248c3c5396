"""The Textual dashboard: plan picker, live dashboard, results view.

Entry points (called by ``perftui.cli`` and ``perftui.sessions``): ``perftui.ui.app.run_dashboard``,
``perftui.ui.app.run_picker`` and ``perftui.ui.app.run_attached``. The UI only consumes the engine:
on its own timers the dashboard builds one frozen view of the run (``perftui.ui.view``) from the
coordinator's session record (or an attached viewer's replica of it) and hands each widget its
part; the controller (``perftui.ui.controller``) calls the coordinator's control API through a
typed ``RunControl`` Protocol. Key help lives in ``perftui.ui.keys``, shared by the dashboard and
the results view.
"""
