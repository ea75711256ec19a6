"""
The service's start-up duties, without a reactor: the open-file limit, and
options that build it.
"""

import resource

import pytest

from wazzap import service, tap


class RecordingLog:
    """
    Keeps each log call's level and formatted message.
    """

    def __init__(self):
        self.events = []

    def _record(self, level):
        return lambda fmt, **fields: self.events.append((level, fmt.format(**fields)))

    def __getattr__(self, level):
        return self._record(level)


def test_open_file_limit_raised_and_cap_announced(monkeypatch):
    """The soft limit is raised to the hard one, and a cap below the wanted number is a warning."""
    limits = {"now": (1024, 4096)}
    monkeypatch.setattr(resource, "getrlimit", lambda kind: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda kind, value: limits.update(now=value))
    log = RecordingLog()
    assert service.raise_open_file_limit(log) == 4096
    assert limits["now"] == (4096, 4096)
    [(level, message)] = log.events
    assert level == "warn"
    assert "caps wazzap at about 4064 clients" in message


def test_generous_open_file_limit_is_information(monkeypatch):
    """A limit past the wanted number is logged as information, not a warning."""
    monkeypatch.setattr(resource, "getrlimit", lambda kind: (1 << 20, 1 << 20))
    log = RecordingLog()
    service.raise_open_file_limit(log)
    assert [level for level, _ in log.events] == ["info"]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("5555", "tcp:5555:backlog=1024"),
        ("tcp:6000:interface=127.0.0.1", "tcp:6000:interface=127.0.0.1:backlog=1024"),
        ("tcp:6000:backlog=10", "tcp:6000:backlog=10"),
        ("unix:/tmp/wazzap.sock", "unix:/tmp/wazzap.sock"),
    ],
)
def test_port_option_forms(value, expected):
    """--port takes a number or an endpoint, and TCP listens with a generous backlog."""
    options = tap.Options()
    options.parseOptions(["--port", value])
    [description] = options["port"]
    assert service.with_backlog(description) == expected


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--port", "tcp:nope"], "--port 'tcp:nope' is not a port or endpoint"),
        (["--flood-rate", "fast"], "--flood-rate must be a number"),
        (["--max-line-bytes", "10"], "--max-line-bytes must be at least 64"),
        (["--admin", "no such"], "--admin 'no such'"),
        (["--bogus"], "option --bogus not recognized"),
    ],
)
def test_bad_options_are_one_line(arguments, message, capsys):
    """Each bad option ends in one line naming the problem, not a usage dump."""
    with pytest.raises(SystemExit) as exit:
        tap.Options().parseOptions(arguments)
    text = str(exit.value.code)
    assert message in text and "\n" not in text
