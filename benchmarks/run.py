"""
Run wazzap's benchmarks: one JSON line per scenario and server.

    python benchmarks/run.py [SCENARIO ...] [--quick] [--servers wazzap,baseline]
                             [--repeat N] [--before DIR] [--history-off]

Scenarios A, B, X, C, D, K, R, T, I, M, L and P are described in benchmarks/README.md (with
the generator check, the rounds of A/B/X and the median of D).  Each
server runs in its own process pinned to one core; this process, the load
generator, pins itself to another.  Every phase is bounded in time, and the
server is stopped (SIGTERM, then SIGKILL) whatever happens.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from loadgen import LoadGenerator, cpu_seconds, has_command, raise_open_file_limit  # noqa: E402
from redis_load import (  # noqa: E402
    REDIS_MISSING, WAZZAP_MESSAGE, RedisServer, Subscribers, publish_at_rate, redis_benchmark)

from tests.certificates import make_certificates  # noqa: E402

HOST = "127.0.0.1"
MIB = 1024 * 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# kind: flood (senders x messages as fast as possible), rate (messages/s for
# seconds, every client in turn), idle (join and measure memory only).
# Flood scenarios run their traffic `rounds` times on the same connections
# (one round is the scenario as defined) and report the median round: at
# wazzap's speed one round of A lasts under 0.1 s.  D joins `warmup` clients
# first and measures the memory of the next `clients`, in `runs` separate
# server processes, and reports the median (see the README).
SCENARIOS = {
    "A": dict(kind="flood", latency_every=10, clients=100, senders=10, messages=200, rcvbuf=MIB,
              rounds=7, servers=("wazzap", "baseline", "minimal")),
    "B": dict(kind="flood", latency_every=10, clients=500, senders=5, messages=100, rcvbuf=MIB,
              rounds=7, servers=("wazzap", "baseline", "minimal")),
    "X": dict(kind="flood", latency_every=10, clients=100, senders=10, messages=1000, rcvbuf=MIB,
              rounds=3, servers=("wazzap", "baseline", "minimal")),
    "C": dict(kind="rate", clients=100, rate=200, duration=10, per_message=True,
              servers=("wazzap", "baseline", "minimal")),
    "D": dict(kind="idle", clients=2000, warmup=100, runs=3, servers=("wazzap", "baseline")),
    "K": dict(kind="rate", latency_every=10, clients=10000, rate=10, duration=30, batch=500,
              join_timeout=600,
              servers=("wazzap", "minimal")),
    # Rooms: the baseline and the minimal fan-out have none (R would be one
    # room of 1,000 there), so only wazzap runs it.
    "R": dict(kind="flood", latency_every=10, clients=1000, room_size=10, senders=100,
              messages=200, rcvbuf=MIB, rounds=7, servers=("wazzap",)),
}
# A over TLS (--tls-port): the clients speak TLS; compare with A of the same run.
SCENARIOS["T"] = dict(SCENARIOS["A"], tls=True, servers=("wazzap",))
# A with every other client on IRC (--irc-port): compare with A of the same run.
SCENARIOS["I"] = dict(SCENARIOS["A"], irc_every=2, servers=("wazzap",))
# D in a lobby with a history: before the measured joins a warm-up client
# says `talk` lines, so each joiner is replayed the last 20 (--replay).
SCENARIOS["H"] = dict(SCENARIOS["D"], talk=20, servers=("wazzap",))
# A with its clients spread over 2 wazzap processes on one redis-server
# (client i on process i % 2), beside A on one process, without and with
# --redis (a process alone on its Redis delivers its rooms without it).
SCENARIOS["M"] = dict(SCENARIOS["A"], servers=("wazzap", "wazzap-redis", "wazzap-redis-x2"))
# The Redis hop: 200 messages/s in all from the clients of the first process
# (group 0: the even clients) to everyone, half of them on a second process;
# on one process without Redis, the same clients in the same two groups.
SCENARIOS["L"] = dict(kind="rate", clients=100, rate=200, duration=10, groups=2, sender_group=0,
                      servers=("wazzap", "wazzap-redis-x2"))
# One Redis's ceiling: redis-server alone on the server's core, a line of
# wazzap's size published on one channel heard by each number of subscribing
# connections (a wazzap process subscribes once per room), at a fixed rate
# and then as fast as redis-benchmark publishes (pipelined and not).
SCENARIOS["P"] = dict(kind="redis", subscribers=(0, 1, 2, 4, 8), rate=10000, duration=3,
                      requests=300000, pipelines=(1, 32), servers=("redis-server",))
QUICK = {
    "A": dict(messages=50, rounds=3),
    "B": dict(messages=30, rounds=3),
    "X": dict(messages=200, rounds=2),
    "C": dict(duration=3),
    "D": dict(clients=300, runs=1),
    "K": dict(clients=1000, duration=5, join_timeout=120),
    "R": dict(messages=50, rounds=3),
    "T": dict(messages=50, rounds=3),
    "I": dict(messages=50, rounds=3),
    "H": dict(clients=300, runs=1),
    "M": dict(messages=50, rounds=3),
    "L": dict(duration=3),
    "P": dict(subscribers=(0, 2), duration=1, requests=50000),
}
RATIO_SCENARIOS = ("A", "B", "X")


#: wazzap's limits that would throttle the load (every client comes from
#: 127.0.0.1, and senders flood by design), each turned off.  A checkout
#: that predates one of them (--before) is run without it.
WAZZAP_LIMITS_OFF = (
    ("--flood-rate", "0"),
    ("--max-per-address", "0"),
    ("--max-connections-per-minute", "0"),
)


def twistd_command():
    twistd = Path(sys.executable).with_name("twistd")
    return str(twistd) if twistd.exists() else shutil.which("twistd") or "twistd"


def wazzap_options(wazzap_root):
    """
    The WAZZAP_LIMITS_OFF options that the wazzap of C{wazzap_root} knows.
    """
    env = dict(os.environ, PYTHONPATH=str(wazzap_root))
    usage = subprocess.run([twistd_command(), "wazzap", "--help"], env=env, capture_output=True,
                           text=True, timeout=60).stdout
    return [word for option, value in WAZZAP_LIMITS_OFF if option in usage
            for word in (option, value)]


#: The server that --history-off adds: wazzap keeping no room history.
HISTORY_OFF = "wazzap-history-off"

#: wazzap on a redis-server of the run's own (--redis): how many processes.
REDIS_SERVERS = {"wazzap-redis": 1, "wazzap-redis-x2": 2}


def server_command(server, port, workdir, wazzap_root=REPO, tls=None, irc_port=None, options=()):
    """
    @param tls: for wazzap, (port, certificate files) of a TLS port too.
    @param irc_port: for wazzap, an IRC port too.
    @param options: for wazzap, more options (--redis).
    """
    if server.startswith("wazzap"):
        tls_options = []
        if tls is not None:
            tls_port, files = tls
            tls_options = ["--tls-port", "tcp:%d:interface=%s:backlog=4096" % (tls_port, HOST),
                           "--tls-cert", str(files.fullchain), "--tls-key", str(files.key)]
        return [
            twistd_command(),
            "-n", "--pidfile=", "--logfile=" + str(workdir / "twistd.log"),
            "wazzap",
            "--port", "tcp:%d:interface=%s:backlog=4096" % (port, HOST),
            *tls_options,
            *(["--irc-port", "tcp:%d:interface=%s:backlog=4096" % (irc_port, HOST)]
              if irc_port else []),
            *wazzap_options(wazzap_root),
            *(["--history-days", "0"] if server == HISTORY_OFF else []),
            *options,
        ]
    script = {"baseline": "baseline_server.py", "minimal": "minimal_fanout.py"}[server]
    return [sys.executable, str(HERE / script), str(port)]


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def proc_status(pid):
    """
    VmRSS and VmHWM of C{pid}, in KiB.
    """
    values = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                values[key] = int(value.split()[0])
    return values


def reset_peak_rss(pid):
    """
    Reset VmHWM to the current RSS (Linux >= 4.0); return whether it worked.
    """
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def proc_sched_seconds(pid):
    """
    (seconds on a CPU, seconds runnable but waiting for one) of every thread
    of C{pid}, from /proc/PID/task/*/schedstat (nanoseconds), or None.  The
    wait is the machine's load showing: other processes on our core.
    """
    running = waiting = 0
    found = False
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        tasks = []
    for task in tasks:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                fields = f.read().split()
            running += int(fields[0])
            waiting += int(fields[1])
            found = True
        except (OSError, ValueError, IndexError):
            pass
    return (running / 1e9, waiting / 1e9) if found else None


def proc_cpu_seconds(pid):
    """
    CPU seconds of every thread of C{pid}, from schedstat (nanoseconds;
    /proc/PID/stat counts 10 ms ticks, too coarse for a flood round), or
    from /proc/PID/stat if schedstat is missing.
    """
    sched = proc_sched_seconds(pid)
    if sched is not None:
        return sched[0]
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_stat(pid):
    """
    The fields of /proc/PID/stat after the command name (the state first).
    """
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def proc_minor_faults(pid):
    """
    Pages C{pid} has had mapped in without reading a disk: new heap
    touched for the first time, after the allocator gave memory back.
    """
    return int(proc_stat(pid)[7])


def proc_private_kib(pid):
    """
    Private_Dirty and Anonymous of C{pid} from /proc/PID/smaps_rollup, in KiB
    (the heap and stacks, not the shared libraries' pages), or {} if missing.
    """
    values = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith(("Private_Dirty:", "Anonymous:")):
                    key, value = line.split(":", 1)
                    values[key] = int(value.split()[0])
    except OSError:
        pass
    return values


def git_commit(root):
    """
    The commit checked out at C{root}, with C{-dirty} if wazzap/ differs.
    """
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "wazzap"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + "-dirty" if dirty else commit) or None


class Server:
    """
    One server under test, in its own process on C{core}.
    """

    def __init__(self, name, core=None, wazzap_root=REPO, tls=False, irc=False, options=()):
        """
        @param core: the core (or a taskset list of cores) to run on.
        @param tls: whether it has a TLS port (C{tls_port}) too, with a
            certificate its clients trust through C{tls_context}.
        @param options: more options for wazzap (see L{server_command}).
        """
        self.name = name
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="wazzap-bench-"))
        self.tls_port = self.tls_context = None
        if tls:
            self.tls_port = free_port()
            files = make_certificates(self.workdir)
            self.tls_context = ssl.create_default_context(cafile=str(files.ca))
            tls = (self.tls_port, files)
        self.irc_port = free_port() if irc else None
        command = server_command(name, self.port, self.workdir, wazzap_root, tls or None,
                                 self.irc_port, options)
        if core is not None and shutil.which("taskset"):
            command = ["taskset", "-c", str(core)] + command
        env = dict(os.environ)
        # twistd finds the plugin only through the path (see STYLE.md).
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(wazzap_root), env.get("PYTHONPATH")]))
        # Its default database in its own directory, never the user's.
        env["XDG_DATA_HOME"] = str(self.workdir)
        self.output = open(self.workdir / "output.log", "wb")
        # taskset execs the server, so this pid is the server's own.
        self.process = subprocess.Popen(
            command, cwd=str(self.workdir), env=env, stdin=subprocess.DEVNULL,
            stdout=self.output, stderr=subprocess.STDOUT,
        )
        self.pid = self.process.pid

    def wait_listening(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("%s exited with %s: %s" % (
                    self.name, self.process.returncode,
                    (self.workdir / "output.log").read_text(errors="replace")[-2000:]))
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("%s did not listen within %s s" % (self.name, timeout))

    def wait_log(self, needle, timeout=20.0):
        """
        Wait until twistd's log has C{needle} (bytes).
        """
        deadline = time.monotonic() + timeout
        log = self.workdir / "twistd.log"
        while time.monotonic() < deadline:
            if log.exists() and needle in log.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError("%s: no %r in its log within %s s" % (self.name, needle, timeout))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.output.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


class Deployment:
    """
    The processes of one server under test: one L{Server}, or for
    L{REDIS_SERVERS} a redis-server of the run's own and that many wazzap
    processes on it.
    """

    def __init__(self, name, core, cores, wazzap_root=REPO, tls=False, irc=False):
        """
        @param core: the core of a server that is alone in its process.
        @param cores: every core (a taskset list): redis-server's, and each
            wazzap's when there are several (they share the machine with
            the generator, which keeps its own core).
        """
        self.redis = None
        self.servers = []
        processes = REDIS_SERVERS.get(name)
        try:
            if processes is None:
                self.servers.append(Server(name, core, wazzap_root, tls, irc))
                return
            self.redis = RedisServer(free_port(), cores)
            options = ("--redis", self.redis.url, "--redis-prefix", "bench:")
            for _ in range(processes):
                self.servers.append(Server(name, core if processes == 1 else cores, wazzap_root,
                                           tls, irc, options))
        except BaseException:
            self.stop()
            raise

    @property
    def pids(self):
        return [server.pid for server in self.servers]

    def wait_listening(self):
        for server in self.servers:
            server.wait_listening()
            if self.redis is not None:
                server.wait_log(b"connected to Redis")

    def stop(self):
        for server in self.servers:
            server.stop()
        if self.redis is not None:
            self.redis.stop()


def run_one(name, config, server_name, core, wazzap_root=REPO, cores=None):
    result = {"scenario": name, "server": server_name, "clients": config["clients"],
              "load_average_1m": round(os.getloadavg()[0], 2)}
    if config["kind"] == "flood":
        result.update(senders=config["senders"], messages=config["messages"])
    if config.get("room_size"):
        result.update(rooms=config["clients"] // config["room_size"],
                      room_size=config["room_size"])
    elif config["kind"] == "rate":
        result.update(senders=config["clients"], rate_per_second=config["rate"],
                      duration_seconds=config["duration"])
    if config.get("sender_group") is not None:
        result["senders"] = "the clients of group %d" % config["sender_group"]
    try:
        deployment = Deployment(server_name, core, cores, wazzap_root,
                                tls=config.get("tls", False), irc=bool(config.get("irc_every")))
    except Exception as e:
        result["error"] = "%s: %s" % (type(e).__name__, e)
        return result
    server = deployment.servers[0]
    # Client i joins process i % groups (several groups on one process are
    # the same clients and traffic as on several processes).
    groups = config.get("groups") or len(deployment.servers)
    ports = [deployment.servers[g % len(deployment.servers)].port for g in range(groups)]
    if groups > 1:
        result.update(processes=len(deployment.servers), groups=groups,
                      group_processes=[g % len(deployment.servers) for g in range(groups)])
    generator = None
    try:
        deployment.wait_listening()
        time.sleep(0.5)
        pid = server.pid
        result["server_rss_start_kib"] = proc_status(pid)["VmRSS"]
        if config.get("room_size") and not has_command(HOST, server.port, b"join"):
            result["error"] = "no /join"
            return result
        generator = LoadGenerator(HOST, server.tls_port or server.port,
                                  rcvbuf=config.get("rcvbuf"),
                                  latency_every=config.get("latency_every", 1),
                                  per_message=config.get("per_message", False),
                                  tls=server.tls_context,
                                  irc_port=server.irc_port,
                                  irc_every=config.get("irc_every", 0),
                                  ports=ports if groups > 1 else None)
        if config["kind"] == "idle":
            return measure_idle(config, generator, pid, result)
        started = time.monotonic()
        joined = generator.connect(config["clients"], batch=config.get("batch", 250),
                                   timeout=config.get("join_timeout", 120))
        generator.settle(quiet=0.5, timeout=config.get("join_timeout", 120))
        if config.get("room_size"):
            generator.enter_rooms(config["room_size"])
            generator.settle(quiet=0.5, timeout=config.get("join_timeout", 120))
        result.update(joined=joined, join_seconds=round(time.monotonic() - started, 3))
        time.sleep(0.2)
        result["server_rss_idle_kib"] = proc_status(pid)["VmRSS"]
        peak_reset = [reset_peak_rss(p) for p in deployment.pids][0]
        faults = proc_minor_faults(deployment.pids[0])
        generator.deliveries = 0
        generator.reset_latencies()
        # The server's processes, then redis-server's if any, then this one.
        watched = deployment.pids + ([deployment.redis.pid] if deployment.redis else [])
        watched.append(os.getpid())
        cpu = [0.0] * len(watched)
        wait = [0.0] * len(watched)
        wall = generator_cpu = 0.0
        rates, expected, seconds, deliveries = [], 0, 0.0, 0
        for _ in range(config.get("rounds", 1) if config["kind"] == "flood" else 1):
            generator.deliveries = 0
            sched0 = [proc_sched_seconds(p) for p in watched]
            cpu0 = [proc_cpu_seconds(p) for p in watched[:-1]]
            own_cpu0, wall0 = cpu_seconds(), time.monotonic()
            if config["kind"] == "flood":
                round_expected, round_seconds = generator.flood(
                    config["senders"], config["messages"], room_size=config.get("room_size"))
            else:
                round_expected, round_seconds, sent = generator.at_rate(
                    config["rate"], config["duration"], sender_group=config.get("sender_group"))
                result["messages"] = sent
            wall += time.monotonic() - wall0
            generator_cpu += cpu_seconds() - own_cpu0
            for i, p in enumerate(watched[:-1]):
                cpu[i] += proc_cpu_seconds(p) - cpu0[i]
            sched1 = [proc_sched_seconds(p) for p in watched]
            if all(sched0) and all(sched1):
                for i in range(len(watched)):
                    wait[i] += sched1[i][1] - sched0[i][1]
            expected += round_expected
            seconds += round_seconds
            deliveries += generator.deliveries
            if round_seconds:
                rates.append(round(generator.deliveries / round_seconds))
            if config["kind"] == "flood":
                generator.settle(quiet=0.2, timeout=10)
        generator.deliveries = deliveries
        processes = len(deployment.servers)
        server_cpu, server_wait = sum(cpu[:processes]), sum(wait[:processes])
        generator_wait = wait[-1]
        status = proc_status(pid)
        p50, p99, p999 = generator.percentiles_ms(0.5, 0.99, 0.999)
        if config["kind"] == "flood":
            result.update(rounds=len(rates), rounds_deliveries_per_second=rates)
        if generator.first_ns:
            # Per message: when its first and its last receiver got it.  The
            # first is the server and kernel path alone; the spread up to the
            # last is the fan-out (the server's sends, the generator's reads).
            for key, values in (("first_receiver", generator.first_ns),
                                ("last_receiver", generator.last_ns)):
                q50, q99 = generator.percentiles_ms(0.5, 0.99, values=array("q", values.values()))
                result["%s_p50_ms" % key], result["%s_p99_ms" % key] = q50, q99
            # Every receiver, timed when epoll said its socket was readable:
            # without the time this process spent reading the sockets before.
            q50, q99 = generator.percentiles_ms(0.5, 0.99, values=generator.poll_latencies_ns)
            result["at_poll_p50_ms"], result["at_poll_p99_ms"] = q50, q99
        result.update(
            deliveries=generator.deliveries,
            expected_deliveries=expected,
            lost=expected - generator.deliveries,
            seconds=round(seconds, 3),
            deliveries_per_second=round(statistics.median(rates)) if rates else 0,
            p50_ms=p50, p99_ms=p99, p999_ms=p999,
            latency_samples=len(generator.latencies_ns),
            latency_clients="all" if generator.latency_every == 1
            else "1 in %d" % generator.latency_every,
            server_rss_peak_kib=status["VmHWM"],
            server_rss_peak_is_during_traffic=peak_reset,
            server_rss_end_kib=status["VmRSS"],
            server_minor_faults=proc_minor_faults(pid) - faults,
            server_cpu_fraction=round(server_cpu / wall, 3),
            generator_cpu_fraction=round(generator_cpu / wall, 3),
            # Time runnable but waiting for the core (others' processes on it).
            server_runqueue_wait_fraction=round(server_wait / wall, 3),
            generator_runqueue_wait_fraction=round(generator_wait / wall, 3),
            # Deliveries per CPU second of each side: the server's is its cost,
            # whatever the machine's load; the generator's is the rate it could
            # count at with its core to itself (its ceiling, for this traffic).
            server_deliveries_per_cpu_second=round(generator.deliveries / server_cpu)
            if server_cpu else None,
            generator_ceiling_deliveries_per_second=round(generator.deliveries / generator_cpu)
            if generator_cpu else None,
            disconnects=generator.disconnects,
        )
        if processes > 1:
            result.update(
                server_cpu_fractions=[round(c / wall, 3) for c in cpu[:processes]],
                server_runqueue_wait_fractions=[round(w / wall, 3) for w in wait[:processes]],
                servers_rss_peak_kib=[proc_status(p)["VmHWM"] for p in deployment.pids],
            )
        if groups > 1:
            for key, q in (("group_p50_ms", 0.5), ("group_p99_ms", 0.99)):
                result[key] = [generator.percentiles_ms(q, values=values)[0]
                               for values in generator.group_latencies_ns]
        if deployment.redis is not None:
            redis_cpu = cpu[processes]
            result.update(
                redis_cpu_fraction=round(redis_cpu / wall, 3),
                redis_runqueue_wait_fraction=round(wait[processes] / wall, 3),
                deliveries_per_cpu_second_with_redis=round(
                    generator.deliveries / (server_cpu + redis_cpu))
                if server_cpu + redis_cpu else None,
            )
        return result
    except Exception as e:
        result["error"] = "%s: %s" % (type(e).__name__, e)
        return result
    finally:
        deployment.stop()
        if generator is not None:
            result.setdefault("disconnects", generator.disconnects)
            generator.close()


def run_redis(name, config, core):
    """
    Scenario P: one line per number of subscribers, with redis-server's
    CPU at a fixed publishing rate and its publishes a second when
    redis-benchmark floods it; what the subscribers got beside what they
    should have (a subscriber that falls too far behind is dropped by
    Redis's pubsub output limit).
    """
    results = []
    redis = RedisServer(free_port(), None if core is None else str(core))
    try:
        for count in config["subscribers"]:
            result = {"scenario": name, "server": "redis-server", "subscribers": count,
                      "message_bytes": len(WAZZAP_MESSAGE),
                      "load_average_1m": round(os.getloadavg()[0], 2)}
            watched = [redis.pid]
            for pipeline in (None,) + tuple(config["pipelines"]):
                # None: this process publishing at config["rate"].
                subscribers = None
                if count:
                    subscribers = Subscribers(redis.port, count, 60)
                    watched.append(subscribers.pid)
                sched0 = [proc_sched_seconds(p) for p in watched]
                own0, wall0 = cpu_seconds(), time.monotonic()
                if pipeline is None:
                    sent = publish_at_rate(redis.port, config["rate"], config["duration"])
                    rate = None
                else:
                    sent = config["requests"]
                    rate = redis_benchmark(redis.port, sent, pipeline, 50 if pipeline == 1 else 4)
                wall = time.monotonic() - wall0
                own = cpu_seconds() - own0
                sched1 = [proc_sched_seconds(p) for p in watched]
                got = subscribers.messages(60) if subscribers else 0
                if subscribers:
                    watched.pop()
                fractions = [round((b[0] - a[0]) / wall, 3) for a, b in zip(sched0, sched1)]
                key = "at_rate" if pipeline is None else "benchmark_pipeline_%d" % pipeline
                result[key] = phase = {
                    "published": sent, "seconds": round(wall, 3),
                    "lines_per_second": rate or round(sent / wall),
                    "redis_cpu_fraction": fractions[0],
                    "subscribers_cpu_fraction": fractions[1] if count else None,
                    "delivered": got, "expected": sent * count,
                }
                if pipeline is None:
                    phase["publisher_cpu_fraction"] = round(own / wall, 3)
                    phase["redis_cpu_per_1000_lines_per_second"] = round(
                        fractions[0] / (sent / wall / 1000), 4)
                else:
                    # Redis's own seconds per publish, whatever else waits.
                    phase["redis_cpu_limited_lines_per_second"] = round(
                        sent / (fractions[0] * wall)) if fractions[0] else None
            results.append(result)
    finally:
        redis.stop()
    return results


def measure_idle(config, generator, pid, result):
    """
    Scenarios D and H: join C{warmup} clients (so that what the first joins
    load once, modules and caches, is not counted), the first of them says
    C{talk} lines (H), then C{clients} more join; the memory growth divided
    by the clients added is the cost of one idle connection, as VmRSS and
    as Private_Dirty (heap and stacks only).
    """
    warmup = config.get("warmup", 0)
    if warmup:
        generator.connect(warmup, batch=config.get("batch", 250), timeout=60)
        generator.settle(quiet=0.5, timeout=60)
        if config.get("talk"):
            generator.talk(config["talk"])
            generator.settle(quiet=0.5, timeout=60)
        time.sleep(0.2)
    before_rss, before_private = proc_status(pid)["VmRSS"], proc_private_kib(pid)
    started = time.monotonic()
    joined = generator.connect(config["clients"], batch=config.get("batch", 250),
                               timeout=config.get("join_timeout", 120), first=warmup)
    generator.settle(quiet=0.5, timeout=config.get("join_timeout", 120))
    added = joined - warmup
    time.sleep(0.2)
    after_rss, after_private = proc_status(pid)["VmRSS"], proc_private_kib(pid)
    result.update(
        warmup=warmup, joined=joined, join_seconds=round(time.monotonic() - started, 3),
        server_rss_before_kib=before_rss, server_rss_idle_kib=after_rss,
        server_rss_per_connection_kib=round((after_rss - before_rss) / max(added, 1), 3),
    )
    if "Private_Dirty" in before_private and "Private_Dirty" in after_private:
        result["server_private_dirty_per_connection_kib"] = round(
            (after_private["Private_Dirty"] - before_private["Private_Dirty"]) / max(added, 1), 3)
    return result


def median_idle(results):
    """
    One line for D from several runs: the median per-connection figures.
    """
    line = dict(results[0])
    for key in ("server_rss_per_connection_kib", "server_private_dirty_per_connection_kib"):
        values = [r[key] for r in results if r.get(key) is not None]
        if values:
            line[key] = statistics.median(values)
            line[key.replace("_kib", "_runs_kib")] = values
    line["runs"] = len(results)
    errors = [r["error"] for r in results if r.get("error")]
    if errors:
        line["error"] = "; ".join(errors)
    return line


def ratio_line(name, results, other="baseline", label=None):
    wazzap, baseline = results.get("wazzap"), results.get(other)
    if not wazzap or not baseline:
        return None
    line = {"scenario": name, "ratio": label or "wazzap/" + other}
    for key in ("deliveries_per_second", "server_deliveries_per_cpu_second", "p50_ms", "p99_ms",
                "server_rss_peak_kib"):
        if wazzap.get(key) and baseline.get(key):
            line[key] = round(wazzap[key] / baseline[key], 3)
    return line


def targets_line(results):
    """
    The project's targets, for the scenarios that ran, as pass/fail.
    """
    checks = {}
    for name in RATIO_SCENARIOS:
        ratio = ratio_line(name, results.get(name, {}))
        if ratio and "deliveries_per_second" in ratio:
            checks["%s_throughput_ratio>=2.5" % name] = ratio["deliveries_per_second"] >= 2.5
    for name in RATIO_SCENARIOS:
        w = results.get(name, {}).get("wazzap")
        if w and w.get("generator_cpu_fraction") is not None:
            # The generator check: it must have had CPU to spare while wazzap ran.
            checks["%s_generator_cpu<0.8" % name] = w["generator_cpu_fraction"] < 0.8
            checks["%s_nothing_lost" % name] = w.get("lost") == 0
    c = results.get("C", {}).get("wazzap")
    if c and c.get("p99_ms") is not None:
        checks["C_p99<=2ms"] = c["p99_ms"] <= 2
        checks["C_p50<=1ms"] = c["p50_ms"] <= 1
    d = results.get("D", {}).get("wazzap")
    if d and "server_rss_per_connection_kib" in d:
        checks["D<=2KiB/connection"] = d["server_rss_per_connection_kib"] <= 2
    x = results.get("X", {}).get("wazzap")
    if x and x.get("server_rss_peak_kib"):
        checks["X_peak<=3x_idle"] = x["server_rss_peak_kib"] <= 3 * x["server_rss_idle_kib"]
    r = results.get("R", {}).get("wazzap")
    if r and "lost" in r:
        checks["R_nothing_lost"] = r["lost"] == 0
    k = results.get("K", {})
    if k.get("wazzap", {}).get("p99_ms") and k.get("minimal", {}).get("p99_ms"):
        checks["K_p99<=1.5x_minimal"] = k["wazzap"]["p99_ms"] <= 1.5 * k["minimal"]["p99_ms"]
        checks["K_nothing_lost"] = k["wazzap"].get("lost") == 0
    return {"targets": checks} if checks else None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help="any of %s (default: all)" % " ".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="fewer messages: a smoke run")
    parser.add_argument("--servers", help="comma-separated subset of wazzap,baseline,minimal")
    parser.add_argument("--wazzap-root", default=str(REPO),
                        help="checkout whose wazzap and plugin to run (default: this one)")
    parser.add_argument("--repeat", type=int, default=1, help="run each scenario N times")
    parser.add_argument("--before", metavar="DIR",
                        help="also run the wazzap of this checkout (e.g. a git worktree of the "
                             "commit before a change) right after wazzap, as wazzap-before")
    parser.add_argument("--history-off", action="store_true",
                        help="also run this checkout's wazzap with --history-days 0 right after "
                             "wazzap, as %s, for the cost of room history" % (HISTORY_OFF,))
    args = parser.parse_args(argv)
    names = [s.upper() for s in args.scenarios] or list(SCENARIOS)
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown:
        parser.error("unknown scenario(s): %s" % ", ".join(unknown))
    wanted = set(args.servers.split(",")) if args.servers else None

    cores = sorted(os.sched_getaffinity(0))
    all_cores = ",".join(str(core) for core in cores)
    server_core = None
    if len(cores) >= 2:
        server_core = cores[0]
        os.sched_setaffinity(0, {cores[1]})
    print(json.dumps({"machine": {"cores": len(cores), "server_core": server_core,
                                  "wazzap_commit": git_commit(args.wazzap_root),
                                  "before_commit": git_commit(args.before)
                                  if args.before else None,
                                  "load_average": [round(x, 2) for x in os.getloadavg()],
                                  "generator_core": cores[1] if server_core is not None else None,
                                  "open_files": raise_open_file_limit(),
                                  "python": sys.version.split()[0],
                                  "date": time.strftime("%Y-%m-%d %H:%M")}}), flush=True)

    for _ in range(max(args.repeat, 1)):
        results = {}
        for name in names:
            config = dict(SCENARIOS[name], **(QUICK[name] if args.quick else {}))
            results[name] = {}
            if (set(config["servers"]) & (set(REDIS_SERVERS) | {"redis-server"})
                    and not shutil.which("redis-server")):
                print(json.dumps({"scenario": name, "skipped": REDIS_MISSING}), flush=True)
                continue
            if config["kind"] == "redis":
                for result in run_redis(name, config, server_core):
                    print(json.dumps(result), flush=True)
                continue
            servers = [(server, args.wazzap_root) for server in config["servers"]]
            if args.before and "wazzap" in config["servers"]:
                servers.insert(1, ("wazzap-before", args.before))
            if args.history_off and "wazzap" in config["servers"]:
                servers.insert(1, (HISTORY_OFF, args.wazzap_root))
            for server_name, root in servers:
                if wanted and server_name not in wanted and server_name not in (
                        "wazzap-before", HISTORY_OFF):
                    continue
                if config["kind"] == "idle":
                    result = median_idle([
                        run_one(name, config, server_name, server_core, root)
                        for _ in range(config.get("runs", 1))])
                else:
                    result = run_one(name, config, server_name, server_core, root, all_cores)
                results[name][server_name] = result
                print(json.dumps(result), flush=True)
                if name == "A" and server_name == "wazzap":
                    print(json.dumps({
                        "summary": "issue-2", "scenario": "A", "server": "wazzap",
                        **{k: result.get(k) for k in ("clients", "senders", "deliveries_per_second",
                                                      "p50_ms", "p99_ms", "server_rss_peak_kib")}
                    }), flush=True)
            for other in ("baseline", "wazzap-before", HISTORY_OFF):
                ratio = ratio_line(name, results[name], other)
                if ratio and (name in RATIO_SCENARIOS or other != "baseline"):
                    print(json.dumps(ratio), flush=True)
            for redis_server in REDIS_SERVERS:
                # On Redis over wazzap alone, in the same run.
                ratio = ratio_line(name, {"wazzap": results[name].get(redis_server),
                                          "alone": results[name].get("wazzap")}, "alone",
                                   redis_server + "/wazzap")
                if ratio:
                    print(json.dumps(ratio), flush=True)
            for mixed, label in (("T", "tls/clear"), ("I", "irc-mix/line")):
                if name == mixed and "A" in results:
                    # wazzap's T (TLS) or I (half on IRC) over its A of this run.
                    ratio = ratio_line(mixed, {"wazzap": results[mixed].get("wazzap"),
                                               "A": results["A"].get("wazzap")}, "A", label)
                    if ratio:
                        print(json.dumps(ratio), flush=True)
        targets = targets_line(results)
        if targets:
            print(json.dumps(targets), flush=True)


if __name__ == "__main__":
    main()
