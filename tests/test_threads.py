"""The CPU thread choice: one thread for small steps, the free cores otherwise, the user's number always."""

import os

from hwqnn.threads import SMALL_STEP_MACS, choose_threads, free_cores


def test_a_small_step_gets_one_thread():
    assert choose_threads(None, SMALL_STEP_MACS / 10) == 1


def test_a_large_step_gets_the_free_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (5.2, 0.0, 0.0))
    assert free_cores() == 3
    assert choose_threads(None, SMALL_STEP_MACS * 10) == 3
    monkeypatch.setattr(os, "getloadavg", lambda: (30.0, 0.0, 0.0))
    assert choose_threads(None, SMALL_STEP_MACS * 10) == 1  # an overloaded machine: never 0


def test_the_users_number_wins():
    assert choose_threads(3, SMALL_STEP_MACS / 10) == 3
