"""Back-pressure on bulk requests in flight (worker/sinks/pressure.py)."""

from __future__ import annotations

import threading

from worker.sinks.pressure import INCREASE_AFTER, InFlight, Window


def test_the_limit_halves_on_overload_and_never_goes_below_one() -> None:
    window = Window(8, 8)
    limits = []
    for _ in range(5):
        window = window.overloaded(window.epoch)
        limits.append(window.limit)
    assert limits == [4, 2, 1, 1, 1]


def test_rejections_of_requests_sent_before_a_decrease_do_not_halve_again() -> None:
    window = Window(8, 8)
    sent_in = window.epoch  # four requests out at once, all rejected
    for _ in range(4):
        window = window.overloaded(sent_in)
    assert window.limit == 4


def test_the_limit_grows_by_one_after_a_run_of_successes_up_to_where_it_started() -> None:
    window = Window(1, 3)
    for _ in range(INCREASE_AFTER - 1):
        window = window.succeeded()
    assert window.limit == 1
    window = window.succeeded()
    assert window.limit == 2
    for _ in range(5 * INCREASE_AFTER):
        window = window.succeeded()
    assert window.limit == 3


def test_no_more_requests_in_flight_than_the_limit() -> None:
    gate = InFlight(4)
    with gate.slot() as sent_in:
        gate.overloaded(sent_in)
        gate.overloaded(sent_in)
    assert gate.limit == 2
    busy = 0
    most = 0
    count = threading.Lock()
    release = threading.Event()

    def sender() -> None:
        nonlocal busy, most
        with gate.slot():
            with count:
                busy += 1
                most = max(most, busy)
            release.wait(0.05)
            with count:
                busy -= 1

    threads = [threading.Thread(target=sender) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2
