"""The run's phase clock alone (``perftui.run.clock``): every transition, pause, skip, back, live
load changes, the shape the workers get and the state the attach wire carries, on a fake clock."""

from __future__ import annotations

import msgspec
import pytest

from perftui.run.clock import ClockState, ClockView, PhaseClock, PhaseSpec, Shape, Transition, phase_specs


class Now:
    """A clock the test moves by hand."""

    def __init__(self, t: float = 500.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def specs() -> list[PhaseSpec]:
    return [
        PhaseSpec("warm up", "open", 10.0, 20.0, 60.0),
        PhaseSpec("steady", "open", 20.0, 60.0, 60.0, arrivals="poisson", max_in_flight=50),
        PhaseSpec("users", "closed", 15.0, 8.0, 8.0),
        PhaseSpec("cool down", "pause", 5.0, 0.0, 0.0),
    ]


def clock() -> tuple[PhaseClock, Now]:
    now = Now()
    return PhaseClock(specs(), now=now), now


def started(index: int = 0) -> tuple[PhaseClock, Now]:
    c, now = clock()
    c.start()
    while c.phase_index < index:
        c.skip()
    return c, now


def test_idle_until_started_then_the_first_phase():
    c, now = clock()
    assert c.state == "idle" and not c.active
    assert c.target() == (0.0, 0) and c.shape() == Shape("idle")
    assert c.due() is None and c.skip() is None and c.back() is None and c.scale_by(2) is None
    assert c.start() == Transition(None, 0, "clock")
    assert c.state == "running" and c.current.name == "warm up" and c.phase_elapsed() == 0
    assert c.start() is None  # only once
    now.advance(5)
    assert c.phase_elapsed() == 5 and c.target() == (40.0, 0)  # halfway up 20→60/s
    assert c.target(back=2.5) == (30.0, 0)
    assert c.target(back=60) == (20.0, 0)  # never before the phase's start


def test_the_clock_enters_each_phase_after_its_length_and_owes_the_end_after_the_last():
    c, now = started()
    now.advance(9.99)
    assert c.due() is None
    now.advance(0.01)
    assert c.due() == Transition(0, 1, "clock")
    assert c.current.name == "steady" and c.phase_elapsed() == 0 and c.due() is None
    now.advance(20)
    assert c.due() == Transition(1, 2, "clock")
    now.advance(15)
    assert c.due() == Transition(2, 3, "clock")
    now.advance(4)
    assert c.due() is None
    now.advance(1)
    assert c.due() == Transition(3, None, "clock")
    assert c.state == "running" and c.phase_index == 3  # the owner ends the run
    c.finish()
    assert c.state == "finished" and not c.active and c.due() is None and c.target() == (0.0, 0)


def test_a_phase_ends_at_its_end_however_late_the_clock_is_asked():
    """The owner looks every so often (the coordinator every 50 ms, longer when held): the next
    phase starts where the last one ran out, and a clock asked very late owes every phase
    change it passed, one by one, each at its own time."""
    c, now = started()
    assert c.ends_at() == 510.0
    now.advance(10.3)
    t = c.due()
    assert t == Transition(0, 1, "clock") and t.at == 510.0
    assert c.phase_elapsed() == pytest.approx(0.3) and c.shape().remaining == pytest.approx(19.7)
    now.advance(40)  # to 550.3: past steady (530) and users (545) and cool down (550)
    owed = [c.due(), c.due(), c.due()]
    assert [(t.entered, t.at) for t in owed] == [(2, 530.0), (3, 545.0), (None, 550.0)]
    c.finish()
    assert c.ends_at() is None


def test_the_arrivals_asked_are_the_target_over_the_time_each_phase_ran():
    """warm up ramps 20 -> 60/s over 10 s (400 asked), steady holds 60/s; a pause asks for none, a
    live change counts from when it was made, a skip ends a phase's asking where it happened, a
    closed phase asks for no arrivals, and a clock asked late counts each phase to its end."""
    c, now = started()
    assert c.asked_arrivals() == 0.0
    now.advance(5)  # the ramp's first half: (20 + 40) / 2 * 5
    assert c.asked_arrivals() == pytest.approx(150.0)
    assert c.pause()
    now.advance(100)
    assert c.asked_arrivals() == pytest.approx(150.0)
    assert c.resume()
    now.advance(5.5)  # the phase ran out half a second ago: 400 from it, 30 from steady
    assert c.due() == Transition(0, 1, "clock")
    assert c.asked_arrivals() == pytest.approx(430.0)
    assert c.asked_arrivals(at=now() - 0.5) == pytest.approx(400.0)  # as of the phase's end
    now.advance(1.5)
    c.set_value("open", 10.0)  # 2 s at 60/s, then 10/s
    now.advance(2)
    assert c.asked_arrivals() == pytest.approx(400 + 120 + 20)
    c.skip()  # into the closed phase: no arrivals asked
    now.advance(20)
    assert c.due() == Transition(2, 3, "clock")
    assert c.asked_arrivals() == pytest.approx(540.0)
    c.finish()
    assert c.asked_arrivals() == pytest.approx(540.0)


def test_a_scaled_ramp_asks_at_its_new_rates_from_when_it_was_scaled():
    c, now = started()
    now.advance(5)  # 20 -> 40/s so far: 150
    change = c.scale_by(2.0)  # the ramp now 40 -> 120/s, at 80/s where it stands
    assert change is not None and change.how == "ramp" and change.value == pytest.approx(80.0)
    now.advance(5)
    assert c.asked_arrivals() == pytest.approx(150 + (80 + 120) / 2 * 5)


def test_the_arrivals_asked_stop_at_the_last_phase_end():
    c, now = clock()
    c.planned = c.specs = [PhaseSpec("only", "open", 2.5, 40.0, 40.0)]
    c.start()
    now.advance(2.9)  # the owner looks late; the stop comes later still
    t = c.due()
    assert t is not None and t.entered is None and t.at == pytest.approx(502.5)
    now.advance(0.3)
    c.finish()
    assert c.asked_arrivals() == pytest.approx(100.0)


def test_pause_stretches_the_phase_and_stops_the_load():
    c, now = started()
    now.advance(3)
    assert c.pause() is True and c.state == "paused"
    assert c.pause() is False
    now.advance(100)
    assert c.phase_elapsed() == 3 and c.due() is None
    assert c.target() == (0.0, 0) and c.shape() == Shape("idle")
    assert c.resume() is True and c.resume() is False and c.state == "running"
    assert c.shape() == Shape("open", 7.0, 32.0, 60.0)
    now.advance(6.5)
    assert c.due() is None and c.phase_elapsed() == 9.5
    now.advance(0.5)
    assert c.due() == Transition(0, 1, "clock")


def test_a_phase_entered_while_paused_waits_for_resume():
    c, now = started()
    c.pause()
    assert c.skip() == Transition(0, 1, "skip")
    assert c.state == "paused"
    now.advance(50)
    assert c.phase_elapsed() == 0
    c.resume()
    now.advance(4)
    assert c.phase_elapsed() == 4


def test_skip_goes_to_the_next_phase_and_past_the_last_owes_the_end():
    c, now = started()
    now.advance(4)
    assert c.skip() == Transition(0, 1, "skip")
    assert c.phase_elapsed() == 0 and c.current.name == "steady"
    c.skip(), c.skip()
    assert c.in_last_phase and c.phase_index == 3
    assert c.skip() == Transition(3, None, "skip")
    assert c.phase_index == 3 and c.active  # nothing moved: ending is the owner's to do
    c.finish()
    assert c.skip() is None


def test_back_within_two_seconds_goes_to_the_previous_phase_later_restarts_this_one():
    c, now = started(1)
    now.advance(1.9)
    assert c.back() == Transition(1, 0, "back")
    assert c.current.name == "warm up" and c.phase_elapsed() == 0
    assert c.back() == Transition(0, 0, "back")  # the first phase has no previous one
    now.advance(2.0)
    assert c.back() == Transition(0, 0, "back") and c.phase_elapsed() == 0
    c.skip()
    now.advance(7)
    assert c.back() == Transition(1, 1, "back")
    assert c.phase_index == 1 and c.phase_elapsed() == 0


def test_a_flat_value_holds_until_the_phase_changes():
    c, now = started(1)
    change = c.set_value("open", 44)
    assert change.how == "value" and change.value == 44 and c.override == 44
    assert c.target() == (44.0, 0) and c.shape() == Shape("open", 20.0, 44.0, 44.0)
    assert c.set_value("closed", 3) is None  # not a closed phase
    assert c.set_value("open", 0).value == 0.1  # a rate never reaches zero
    c.skip()
    assert c.override is None and c.target() == (0.0, 8)
    assert c.set_value("closed", 0.5).value == 1.0  # at least one VU
    assert c.set_value("closed", 5.9).value == 5.0  # whole VUs
    now.advance(15)
    c.due()
    assert c.override is None  # the clock's phase change drops it too
    c.back()
    c.set_value("closed", 4)
    now.advance(3)
    c.back()  # restarting the phase drops it as well
    assert c.override is None and c.target() == (0.0, 8)


def test_scaling_a_flat_phase_sets_a_flat_value():
    c, now = started(1)
    assert c.scale_by(1.1).value == pytest.approx(66.0)
    assert c.scale_by(0.9).value == pytest.approx(59.4)  # from the value held, not the plan
    assert c.current.start_value == 60.0  # the plan's phase is untouched


@pytest.mark.parametrize("vus, factor, expected", [
    (8, 1.1, 9), (8, 0.9, 7), (2, 1.1, 3), (2, 0.9, 1), (1, 0.9, 1), (40, 1.1, 44), (40, 0.9, 36),
])
def test_scaling_vus_moves_by_at_least_one_whole_vu(vus, factor, expected):
    now = Now()
    c = PhaseClock([PhaseSpec("users", "closed", 30.0, float(vus), float(vus))], now=now)
    c.start()
    change = c.scale_by(factor)
    assert change.how == "value" and change.value == expected and c.target() == (0.0, expected)


def test_scaling_a_ramp_scales_both_ends_and_keeps_its_clock():
    c, now = started()
    now.advance(5)
    planned = c.current
    change = c.scale_by(1.1)
    assert change.how == "ramp" and change.factor == 1.1
    assert (c.current.start_value, c.current.end_value) == (pytest.approx(22.0), pytest.approx(66.0))
    assert c.current is not planned and change.spec is c.current
    assert c.current.describe() == "22→66/s"
    assert c.override is None and change.value == pytest.approx(44.0) and c.target()[0] == pytest.approx(44.0)
    assert c.phase_elapsed() == 5
    shape = c.shape()
    assert shape.remaining == 5 and shape.value_from == pytest.approx(44.0) and shape.value_to == pytest.approx(66.0)
    assert c.s.ramps == {0: (pytest.approx(22.0), pytest.approx(66.0))}
    c.scale_by(1.1)  # again: from the scaled ramp
    assert c.current.end_value == pytest.approx(72.6)
    # the ramp stays scaled when the phase is entered again
    c.skip()
    now.advance(1)
    c.back()
    assert c.phase_index == 0 and c.current.end_value == pytest.approx(72.6)
    assert c.planned[0].end_value == 60.0


def test_a_ramp_end_at_zero_stays_there_and_others_keep_a_floor():
    now = Now()
    c = PhaseClock([PhaseSpec("down", "open", 10.0, 0.5, 0.0), PhaseSpec("vus", "closed", 10.0, 1.0, 3.0)], now=now)
    c.start()
    c.scale_by(0.1)
    assert (c.current.start_value, c.current.end_value) == (0.1, 0.0)
    c.skip()
    c.scale_by(0.5)
    assert (c.current.start_value, c.current.end_value) == (1.0, 1.5)


def test_a_ramp_held_flat_scales_as_a_flat_value():
    c, now = started()
    now.advance(5)
    c.set_value("open", 30)
    change = c.scale_by(2)
    assert change.how == "value" and change.value == 60 and c.current.end_value == 60.0


def test_nothing_to_scale_in_a_pause_phase():
    c, now = started(3)
    assert c.scale_by(1.1) is None and c.set_value("open", 5) is None
    assert c.shape() == Shape("idle") and c.target() == (0.0, 0)


def test_the_shape_the_workers_get():
    c, now = started()
    now.advance(2.5)
    assert c.shape() == Shape("open", 7.5, 30.0, 60.0)
    c.skip(), c.skip()
    now.advance(5)
    assert c.shape() == Shape("closed", 10.0, 8.0, 8.0)
    c.scale_by(1.5)
    assert c.shape() == Shape("closed", 10.0, 12.0, 12.0)
    now.advance(20)
    assert c.shape().remaining == 0.0  # overdue: nothing left, never negative


def test_finish_stops_the_clock_where_it_is():
    c, now = started()
    now.advance(4)
    c.finish()
    now.advance(30)
    assert c.phase_elapsed() == 4 and c.state == "finished" and c.shape() == Shape("idle")
    assert c.pause() is False and c.resume() is False and c.start() is None


def test_the_state_round_trips_through_the_wire_and_a_replica_answers_the_same():
    c, now = started()
    now.advance(5)
    c.scale_by(2.0)
    c.skip()
    now.advance(3)
    c.set_value("open", 33)
    wire = msgspec.msgpack.encode(c.s)
    state = msgspec.msgpack.decode(wire, type=ClockState)
    assert state == c.s
    replica = PhaseClock(specs(), now=now, state=state)
    assert (replica.state, replica.phase_index, replica.override) == ("running", 1, 33.0)
    assert replica.specs[0].describe() == "40→120/s"  # the scaled ramp came along
    assert replica.phase_elapsed() == 3 and replica.target() == c.target() and replica.shape() == c.shape()
    now.advance(2)
    assert replica.phase_elapsed() == c.phase_elapsed() == 5
    # a paused run: the replica's clock stands still too
    c.pause()
    replica.load(msgspec.msgpack.decode(msgspec.msgpack.encode(c.s), type=ClockState))
    now.advance(10)
    assert replica.state == "paused" and replica.phase_elapsed() == 5


def test_a_replica_keeps_the_phases_that_did_not_change():
    c, now = started()
    replica = PhaseClock(specs(), now=now, state=msgspec.msgpack.decode(msgspec.msgpack.encode(c.s), type=ClockState))
    before = list(replica.specs)
    replica.load(msgspec.msgpack.decode(msgspec.msgpack.encode(c.s), type=ClockState))
    assert all(a is b for a, b in zip(before, replica.specs))
    c.scale_by(3)
    replica.load(msgspec.msgpack.decode(msgspec.msgpack.encode(c.s), type=ClockState))
    assert replica.specs[0] is not before[0] and replica.specs[0].end_value == 180.0
    assert all(a is b for a, b in zip(before[1:], replica.specs[1:]))


def test_phase_specs_from_a_plan():
    from perftui.planload import plan_from_dict

    loaded = plan_from_dict({
        "target": "http://127.0.0.1:9",
        "phases": [
            {"name": "ramp", "duration": "1m", "arrival_rate": 5, "ramp_to": 50, "arrivals": "poisson"},
            {"duration": "30s", "vus": 4, "ramp_to": 10},
            {"duration": "5s", "pause": True},
        ],
        "scenarios": [{"steps": [{"url": "/"}]}],
    }, file="p.toml")
    got = phase_specs(loaded.plan.phases)
    assert [(s.name, s.kind, s.duration, s.describe()) for s in got] == [
        ("ramp", "open", 60.0, "5→50/s"), ("phase 2", "closed", 30.0, "4→10 VUs"), ("phase 3", "pause", 5.0, "pause")]
    assert got[0].arrivals == "poisson"


def test_clock_view_reads_the_owners_clock():
    class Owner(ClockView):
        def __init__(self, clock):
            self.phase_clock = clock

    c, now = started()
    o = Owner(c)
    now.advance(5)
    assert (o.state, o.phase_index, o.current.name, o.specs is c.specs, o.override) == (
        "running", 0, "warm up", True, None)
    assert o.current_phase_elapsed() == 5 and o.target_now() == (40.0, 0) and o.target_now(back=5) == (20.0, 0)
