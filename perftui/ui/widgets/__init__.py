"""Dashboard widgets, named for what they show. Each titles itself and draws its part of the
dashboard's per-tick view (``perftui.ui.view.RunView``); none reads the controller or the session.
The results view reuses their renderable-building functions."""

from perftui.ui.widgets.charts import ErrorChart, LatencyChart, PlanSketch, RateChart
from perftui.ui.widgets.endpoints import EndpointsTable
from perftui.ui.widgets.header import HeaderBar
from perftui.ui.widgets.phases import PhaseStrip
from perftui.ui.widgets.protocols import ProtocolsPanel
from perftui.ui.widgets.tables import ErrorsPanel, GeneratorPanel, LatencyTable, ThresholdsPanel
from perftui.ui.widgets.target import TargetPanel

__all__ = [
    "EndpointsTable", "ErrorChart", "ErrorsPanel", "GeneratorPanel", "HeaderBar", "LatencyChart",
    "LatencyTable", "PhaseStrip", "PlanSketch", "ProtocolsPanel", "RateChart", "TargetPanel", "ThresholdsPanel",
]
