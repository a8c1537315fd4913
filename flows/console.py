"""What Prefect prints at the terminal while a command runs its flows.

A flow run that fails logs the exception's traceback on the console (and to the API, where the UI
shows it). At the terminal an expected failure (alerts with `--fail-on-alert`, a fleet deployment
that cannot be read) is a few plain lines: the command says what happened and what to do. So the
console keeps each log line and drops the traceback under it, unless `--debug` asks for it; the
Prefect UI still has it.
"""

from __future__ import annotations

import logging


class WithoutTraceback(logging.Formatter):
    """Another formatter's lines, without the exception's traceback."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info or record.exc_text:
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        return self.inner.format(record)


def console_without_tracebacks(debug: bool) -> None:
    """Every console handler of Prefect's logging formats without tracebacks."""
    if debug:
        return
    from prefect.logging.configuration import setup_logging

    setup_logging()  # what Prefect would do at its first flow run; later calls only update levels
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            console = isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler
            )
            if console and not isinstance(handler.formatter, WithoutTraceback):
                handler.setFormatter(WithoutTraceback(handler.formatter))
