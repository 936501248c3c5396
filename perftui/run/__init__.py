"""The run layer: above the session record, below the viewers.

``clock`` is the run's one control state machine (phases, pause, skip, back, live rate/VU
changes) as a pure object, ``PhaseClock``; ``coordinator`` owns a plan's worker processes, runs
them under a ``PhaseClock`` and feeds the session record (``perftui.session``) and its journal;
``attach`` serves a detached run to viewers and gives a viewer a coordinator-shaped replica whose
``PhaseClock`` is loaded from the run's. The dashboard (``perftui.ui``) and the headless reporter
(``perftui.headless``) consume what this layer produces; workers (``perftui.worker``) sit below
it and never import it.
"""
