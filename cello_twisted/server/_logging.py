"""Log observers for app.run() and twistd: readable text lines or JSON lines.

``text``: one line per event with the time once. Access-log events (namespace
``cello_twisted.access``) are the bare request line; other events keep Twisted's
``[namespace#level]`` tag. ``json``: one JSON object per line, as encoded by
twisted.logger's ``jsonFileLogObserver`` (the event's fields, e.g. ``method``,
``path``, ``status``, ``duration_ms``, ``client_ip``, ``request_id``), plus ``text``,
the formatted message, for collectors that show a line.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from twisted.logger import (
    FileLogObserver,
    ILogObserver,
    LogEvent,
    formatEvent,
    formatEventAsClassicLogText,
    formatTime,
    jsonFileLogObserver,
)
from zope.interface import implementer

LOG_FORMATS = ("text", "json")
ACCESS_NAMESPACE = "cello_twisted.access"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _stamp(event: LogEvent) -> str:
    return formatTime(event.get("log_time"), TIME_FORMAT)


def format_text(event: LogEvent) -> str | None:
    """One text line: ``TIME METHOD PATH → STATUS (N.NNNms) IP [ID]`` for requests."""
    if event.get("log_namespace") == ACCESS_NAMESPACE:
        return f"{_stamp(event)} {formatEvent(event)}\n"
    return formatEventAsClassicLogText(event, formatTime=lambda when: formatTime(when, TIME_FORMAT))


def text_observer(stream: IO[str]) -> FileLogObserver:
    return FileLogObserver(stream, format_text)


@implementer(ILogObserver)
class JsonLinesObserver:
    """JSON lines via twisted.logger's JSON encoding, with the formatted ``text`` added."""

    def __init__(self, stream: IO[str]) -> None:
        self._json = jsonFileLogObserver(stream, recordSeparator="")

    def __call__(self, event: LogEvent) -> None:
        self._json({**event, "text": formatEvent(event)})


def observer_for(log_format: str, stream: IO[str]) -> Any:
    """The observer for ``log_format`` (``text`` or ``json``) writing to ``stream``."""
    if log_format == "json":
        return JsonLinesObserver(stream)
    return text_observer(stream)


def start_logging(log_format: str = "text", stream: IO[str] | None = None) -> None:
    """Begin global logging (app.run): one observer on stderr."""
    from twisted.logger import globalLogBeginner

    observer = observer_for(log_format, stream or sys.stderr)
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


# Where twistd's JSON observer writes: (--logfile, --nodaemon), set when the options are parsed.
twistd_target: list[tuple[str, bool]] = []


def twistd_json_observer() -> Any:
    """The ``--logger`` factory twistd imports by name for ``--log-format json``.

    Honours ``--logfile`` (``-`` is stdout); without it, stdout under ``-n`` and
    ``twistd.log`` otherwise, like twistd's own observer.
    """
    logfile, nodaemon = twistd_target[-1] if twistd_target else ("", True)
    target = logfile or ("-" if nodaemon else "twistd.log")
    if target == "-":
        stream: IO[str] = sys.stdout
    else:
        from twisted.python.logfile import LogFile

        stream = LogFile.fromFullPath(target)
    return observer_for("json", stream)
