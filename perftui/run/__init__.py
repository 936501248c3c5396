"""The run layer: above the session record, below the viewers.

``coordinator`` owns a plan's worker processes, its phase clock and live control, and feeds the
session record (``perftui.session``) and its journal; ``clock`` is the run's control state
machine (phases, pause, skip, overrides) as a pure object; ``attach`` serves a detached run to
viewers and gives a viewer a coordinator-shaped replica. The dashboard (``perftui.ui``) and the
headless reporter (``perftui.headless``) consume what this layer produces; workers
(``perftui.worker``) sit below it and never import it.
"""
