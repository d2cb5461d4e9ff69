"""machinery/reports.py: what the long runs print of their time left."""
from machinery import reports


def test_time_left():
    assert reports.time_left(60., 2, 20) == '  ~9.0 min left'
    assert reports.time_left(60., 20, 20) == ''
