"""Every record a maru logger writes is masked, whatever handler the application configured."""

from __future__ import annotations

import logging

import maru

FAKE_KEY = "sk-proj-" + "Ab3dE5gH7jK9mN1pQ3sT5vX7zB9" * 2


def test_a_failing_listener_logs_no_secret(caplog):
    def leaky_listener(event):
        raise RuntimeError(f"provider said: invalid key {FAKE_KEY}")

    step = maru.runnable(lambda x: x + 1)
    with caplog.at_level(logging.DEBUG, logger="maru"), maru.listen(leaky_listener):
        assert step.invoke(1) == 2
    written = "\n".join(handler_text(caplog))
    assert "invalid key" in written  # the failure is reported …
    assert FAKE_KEY not in written  # … without the key, in the message and the traceback


def test_records_of_other_loggers_pass_untouched():
    """Only maru's records are masked when made (``maru serve`` masks its whole process on its own)."""
    make_record = logging.getLogRecordFactory()
    theirs = make_record("someapp", logging.INFO, __file__, 1, "their own %s", (FAKE_KEY,), None)
    ours = make_record("maru.x", logging.INFO, __file__, 1, "ours %s", (FAKE_KEY,), None)
    assert FAKE_KEY in theirs.getMessage()
    assert FAKE_KEY not in ours.getMessage()


def handler_text(caplog) -> list[str]:
    formatter = logging.Formatter("%(message)s")
    return [formatter.format(record) for record in caplog.records]
