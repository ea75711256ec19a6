"""
End-to-end: the real C{twistd -n wazzap --metrics} serves Prometheus text
over HTTP on loopback while people connect, talk and leave, and a bad or
busy metrics endpoint stops the start in one line.
"""

import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import TIMEOUT, free_port, run_wazzap, until

pytestmark = pytest.mark.timeout(60)


def scrape(port, path="/metrics"):
    """
    The samples served at C{path}: C{name} or C{(name, label value)} -> value.
    """
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=TIMEOUT) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = answer.read().decode("utf-8")
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name,) + tuple(sample.labels.values())
            samples[key[0] if len(key) == 1 else key] = sample.value
    return samples


def scrape_until(port, predicate):
    """
    The samples of the first scrape of which C{predicate} holds, within the timeout.
    """
    samples = until(lambda: (lambda samples: predicate(samples) and samples)(scrape(port)))
    assert samples, "no scrape of %d answered as expected in time" % (port,)
    return samples


@pytest.fixture
def metered(start_server):
    """
    A real server with --metrics on a free loopback port, and that port.
    """
    port = free_port()
    server = start_server("--metrics=tcp:%d:interface=127.0.0.1" % (port,))
    server.wait_for_log("serving metrics on http://127.0.0.1:%d/metrics" % (port,))
    return server, port


def test_a_scrape_counts_people_talking_and_leaving(metered, open_client):
    """After two join, talk and one quits, a scrape tells who is online and what went through."""
    server, port = metered
    before = scrape(port)
    assert before["wazzap_users_online"] == 0
    assert before["wazzap_rooms"] == 1
    alice = open_client(server, "alice")
    bob = open_client(server, "bob")
    alice.read_until("bob joined")
    for index in range(3):
        alice.send("hello %d" % (index,))
    bob.read_until("alice: hello 2")
    alice.send("/quit")
    alice.wait_closed()
    bob.read_until("alice left")
    samples = scrape_until(port, lambda s: s[("wazzap_disconnections_total", "quit")] == 1)
    assert samples["wazzap_users_online"] == 1
    assert samples["wazzap_connections_open"] == 1
    assert samples["wazzap_connections_total"] == 2
    # Two nicknames, three lines and the /quit.
    assert samples["wazzap_received_lines_total"] == 6
    # Everything either of them was sent, they read.
    assert samples["wazzap_sent_lines_total"] == alice.raw.count(b"\n") + bob.raw.count(b"\n")
    assert samples["wazzap_sent_bytes_total"] == len(alice.raw) + len(bob.raw)
    assert samples["wazzap_login_failures_total"] == 0
    assert samples["wazzap_queued_output_bytes"] == 0
    others = [
        key for key, value in samples.items()
        if key[0] == "wazzap_disconnections_total" and key[1] != "quit" and value
    ]
    assert others == []


def test_the_reactor_lag_is_sampled_every_second(metered):
    """Within a few seconds the lag histogram has samples, nearly all of them short."""
    _, port = metered
    samples = scrape_until(port, lambda s: s["wazzap_reactor_lag_seconds_count"] >= 2)
    assert samples[("wazzap_reactor_lag_seconds_bucket", "+Inf")] >= 2
    assert samples["wazzap_reactor_lag_seconds_sum"] < samples["wazzap_reactor_lag_seconds_count"]


def test_other_paths_are_not_found(metered):
    """Only /metrics is served: anything else is a 404."""
    _, port = metered
    with pytest.raises(urllib.error.HTTPError) as answer:
        scrape(port, "/")
    assert answer.value.code == 404


def test_a_bad_metrics_endpoint_is_one_line(tmp_path):
    """A --metrics that is no endpoint is one usage line and status 1."""
    result = run_wazzap(tmp_path, "--metrics=nowhere:9108")
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "twistd wazzap: --metrics 'nowhere:9108' is not a port or endpoint"
    ), result.stderr


def test_a_metrics_port_in_use_is_one_line(tmp_path):
    """A metrics port in use ends the start with one line and status 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_wazzap(tmp_path, "--metrics=%d" % (port,))
    assert result.returncode == 1, result
    assert result.stderr == (
        "wazzap: cannot serve metrics on tcp:%d:interface=127.0.0.1: address already in use\n"
        % (port,)
    )
