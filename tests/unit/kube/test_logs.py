"""The operator's log lines: the text formatter's time stamp is logging's own."""

from __future__ import annotations

import logging

from claw_operator.kube.logs import TextFormatter


def test_the_text_time_stamp_is_loggings_across_seconds() -> None:
    ours, reference = TextFormatter(), logging.Formatter()
    base = 1_764_540_000.0
    for offset in (0.0, 0.001, 0.5, 0.999, 1.0, 1.25, 61.7, 0.2, 3600.0):
        record = logging.makeLogRecord({"name": "claw_operator.fly", "levelno": logging.INFO, "msg": "x"})
        record.created = base + offset
        record.msecs = int((record.created - int(record.created)) * 1000) + 0.0
        assert ours.formatTime(record) == reference.formatTime(record)
        assert ours.formatTime(record, "%H:%M") == reference.formatTime(record, "%H:%M")
