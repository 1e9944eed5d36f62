"""Alarm patterns on the simulated board: FEVER warbles until acknowledged,
RECHECK beeps when a person leaves unresolved, CLEAR is silent."""

INTERPRETERS = ("micropython",)

import alarm  # noqa: E402
import board  # noqa: E402
import buzzer  # noqa: E402
import calibration  # noqa: E402
import protocol  # noqa: E402
import simboard  # noqa: E402


def setup():
    simboard.reset_board()
    pwm = board.make_buzzer_pwm()
    a = alarm.Alarm(buzzer.Buzzer(pwm), board.make_led(), board.make_button())
    return a


def tones():
    return [e for e in simboard.pwm_timeline.get(board.BUZZER_PIN, []) if e[2]]


def run(a, t0, t1, step=10):
    t = t0
    while t <= t1:
        a.tick(t)
        t += step


def ev(outcome, track=1):
    return protocol.ScreeningEvent(seq=1, outcome=outcome, track_id=track, core_c=39.0, core_u_c=0.9)


def test_fever_plays_fever_pattern_and_repeats_until_acknowledged():
    a = setup()
    a.on_event(ev(calibration.FEVER))
    run(a, 0, 990)
    assert len(tones()) == len(buzzer.FEVER)
    assert [e[1] for e in tones()] == [p[0] for p in buzzer.FEVER]
    run(a, 1000, 4990)  # repeated after FEVER_REPEAT_MS
    assert len(tones()) == 2 * len(buzzer.FEVER)
    simboard.press_button(board.BUTTON_PIN)
    run(a, 5000, 20000)
    assert a.silenced
    assert len(tones()) <= 2 * len(buzzer.FEVER) + 1
    assert simboard.pin_levels[board.LED_PIN] == 0


def test_one_alarm_per_person():
    a = setup()
    a.on_event(ev(calibration.FEVER, track=7))
    run(a, 0, 990)
    n = len(tones())
    a.on_event(ev(calibration.FEVER, track=7))
    a.acknowledge()
    run(a, 1000, 12000)
    assert len(tones()) == n


def test_recheck_beeps_only_when_person_leaves_and_clear_is_silent():
    a = setup()
    a.on_event(ev(calibration.RECHECK))
    a.on_event(ev(calibration.CLEAR, track=2))
    run(a, 0, 2000)
    assert tones() == []
    a.on_final(1, calibration.RECHECK)
    run(a, 2000, 3000)
    assert [e[1] for e in tones()] == [p[0] for p in buzzer.RECHECK]


def test_led_fast_blink_during_fever():
    a = setup()
    a.on_event(ev(calibration.FEVER))
    levels = set()
    for t in range(0, 1000, 50):
        a.tick(t)
        levels.add(simboard.pin_levels[board.LED_PIN])
    assert levels == {0, 1}
