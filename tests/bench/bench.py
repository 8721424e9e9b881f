#!/usr/bin/env python3
"""bench.py - dsc against etcd on this machine, same work, one run.

What `make bench` runs (through tests/bench/run.sh); the method is in
tests/bench/README.md. Starts a 3-server dsc cluster (plus one dsc-agent
when it is built) and a 3-member etcd cluster with default settings, data
dirs side by side under OUT, on 127.0.x.y addresses and free ports; drives
both with tests/tools/dsc-load; writes every raw result as a JSON line to
OUT/results.jsonl and the table to OUT/table.md. Every process it starts
is stopped by its PID (SIGTERM, then SIGKILL), also when it is interrupted.

Usage: bench.py --build DIR --out DIR [--budget SECS]
Environment: BENCH_REPS (3), BENCH_CLIENTS ("1 16 64 256"),
BENCH_WRITE_SECS (3), BENCH_READ_SECS (2), BENCH_FAILOVERS (5),
BENCH_CLI_RUNS (100), BENCH_INSTANCES (100000).
"""

import argparse
import base64
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

DSC_IPS = ["127.0.3.1", "127.0.3.2", "127.0.3.3"]
AGENT_IP = "127.0.3.10"
ETCD_IPS = ["127.0.4.1", "127.0.4.2", "127.0.4.3"]
CLIENT_IP = "127.0.5.1"
WARMUP = 0.5
# The ~225-byte Consul catalog registration of the issue; @ID@ and @NODE@
# are filled in per request by dsc-load.
REGISTRATION = (
    '{"Node":"node-@NODE@","Address":"10.20.30.40",'
    '"Service":{"Service":"web","ID":"web-@ID@",'
    '"Tags":["primary","v1","http"],"Address":"10.20.30.40","Port":8080,'
    '"Meta":{"version":"1.2.3","zone":"eu-west-1a","team":"payments"}}}'
)
WEB_PREFIX = "/services/web/"


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        sys.exit("bench: error: %s must be an integer" % name)


def b64(s):
    return base64.b64encode(s.encode()).decode()


class Stop(Exception):
    """SIGTERM or SIGINT: clean up and leave."""


def on_signal(signum, frame):
    raise Stop("signal %d" % signum)


class Proc:
    """A process we started; stopped by the PID we got, never by name."""

    def __init__(self, name, argv, logpath):
        self.name, self.argv, self.logpath = name, argv, logpath
        self.p = None
        self.start()

    def start(self):
        with open(self.logpath, "ab") as f:
            f.write(("--- start: %s\n" % " ".join(self.argv)).encode())
            f.flush()
            self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                      stdout=f, stderr=subprocess.STDOUT)

    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def stop(self, wait=15):
        if not self.alive():
            return
        self.p.terminate()
        try:
            self.p.wait(wait)
        except subprocess.TimeoutExpired:
            log("%s (pid %d) ignored SIGTERM; killing it" %
                (self.name, self.pid))
            self.p.kill()
            self.p.wait(5)

    def reap(self, wait=5):
        """After someone else's SIGKILL (dsc-load's failover mode)."""
        try:
            self.p.wait(wait)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)

    def rss_kb(self):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0


def port_free(ips, port):
    for ip in ips:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def pick_port(ips, taken=()):
    """A port in 10000-32767 (below the ephemeral range) free on every IP."""
    for _ in range(200):
        port = random.randint(10000, 32767)
        if port not in taken and port_free(ips, port):
            return port
    raise RuntimeError("no free port on %s" % ips)


def http_json(url, body=None, timeout=2.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data,
                                 method="GET" if body is None else "POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_until(what, fn, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    raise RuntimeError("gave up waiting %ds for %s" % (secs, what))


class Dsc:
    label = "dsc"

    def __init__(self, b, out):
        self.b, self.dir = b, os.path.join(out, "dsc")
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "cluster.key")
        subprocess.run([b.server, "keygen", self.key], check=True)
        self.port = pick_port(DSC_IPS)
        self.addrs = ["%s:%d" % (ip, self.port) for ip in DSC_IPS]
        self.procs = []
        for i, addr in enumerate(self.addrs):
            joins = []
            for other in self.addrs:
                if other != addr:
                    joins += ["--join", other]
            self.procs.append(Proc("dsc s%d" % (i + 1), [
                b.server, "--name", "s%d" % (i + 1), "--bind", addr,
                "--data-dir", self.data(i), "--key-file", self.key,
                "--bootstrap-expect", "3"] + joins, self.logf(i)))
        self.agent = None

    def data(self, i):
        return os.path.join(self.dir, "s%d" % (i + 1))

    def logf(self, i):
        return os.path.join(self.dir, "s%d.log" % (i + 1))

    def health(self, i):
        return http_json("http://%s/health" % self.addrs[i], timeout=1)

    def leader(self):
        """Index of the server all running servers name leader, or None."""
        names = set()
        for i, p in enumerate(self.procs):
            if not p.alive():
                continue
            h = self.health(i)
            if not h.get("known_leader"):
                return None
            names.add(h["leader_name"])
        if len(names) != 1:
            return None
        i = int(names.pop()[1:]) - 1
        return i if self.procs[i].alive() else None

    def wait_ready(self, secs=30):
        def ok():
            i = self.leader()
            if i is None:
                return None
            hs = [self.health(j) for j in range(3)]
            return i + 1 if max(h["commit"] for h in hs) - min(
                h["applied"] for h in hs) < 100 else None
        return wait_until("a dsc leader", ok, secs) - 1

    def restart(self, i):
        self.procs[i].argv = [self.b.server, "--data-dir", self.data(i),
                              "--key-file", self.key]
        self.procs[i].start()

    def start_agent(self):
        if not os.access(self.b.agent, os.X_OK):
            return
        lead = self.wait_ready()
        order = [self.addrs[lead]] + [a for j, a in enumerate(self.addrs)
                                      if j != lead]
        port = pick_port([AGENT_IP])
        d = os.path.join(self.dir, "agent")
        os.makedirs(os.path.join(d, "config"))
        argv = [self.b.agent, "--name", "bench-agent", "--bind", AGENT_IP,
                "--http", "%s:%d" % (AGENT_IP, port),
                "--data-dir", os.path.join(d, "data"),
                "--config-dir", os.path.join(d, "config"),
                "--key-file", self.key]
        for a in order:
            argv += ["--server", a]
        self.agent = Proc("dsc-agent", argv,
                          os.path.join(self.dir, "agent.log"))
        self.agent_addr = "%s:%d" % (AGENT_IP, port)
        wait_until("the agent", lambda: http_json(
            "http://%s/v1/status/leader" % self.agent_addr, timeout=1), 30)

    def server_pids(self):
        return [p.pid for p in self.procs if p.alive()]

    def stop(self):
        if self.agent is not None:
            self.agent.stop()
        for p in self.procs:
            if p.alive():
                p.p.terminate()
        for p in self.procs:
            p.stop()


class Etcd:
    label = "etcd"

    def __init__(self, b, out):
        self.dir = os.path.join(out, "etcd")
        os.makedirs(self.dir)
        self.cport = pick_port(ETCD_IPS)
        self.pport = pick_port(ETCD_IPS, (self.cport,))
        self.addrs = ["%s:%d" % (ip, self.cport) for ip in ETCD_IPS]
        cluster = ",".join("m%d=http://%s:%d" % (i + 1, ip, self.pport)
                           for i, ip in enumerate(ETCD_IPS))
        self.procs = []
        for i, ip in enumerate(ETCD_IPS):
            peer = "http://%s:%d" % (ip, self.pport)
            client = "http://%s:%d" % (ip, self.cport)
            self.procs.append(Proc("etcd m%d" % (i + 1), [
                b.etcd, "--name", "m%d" % (i + 1),
                "--data-dir", os.path.join(self.dir, "m%d" % (i + 1)),
                "--listen-client-urls", client,
                "--advertise-client-urls", client,
                "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer,
                "--initial-cluster", cluster,
                "--initial-cluster-token", "dsc-bench",
                "--initial-cluster-state", "new"],
                os.path.join(self.dir, "m%d.log" % (i + 1))))

    def status(self, i):
        return http_json("http://%s/v3/maintenance/status" % self.addrs[i],
                         {}, timeout=1)

    def leader(self):
        ids, lead = {}, set()
        for i, p in enumerate(self.procs):
            if not p.alive():
                continue
            s = self.status(i)
            ids[s["header"]["member_id"]] = i
            lead.add(s.get("leader", "0"))
        if len(lead) != 1:
            return None
        return ids.get(lead.pop())

    def wait_ready(self, secs=30):
        def ok():
            i = self.leader()
            if i is None:
                return None
            for j in range(3):
                h = http_json("http://%s/health" % self.addrs[j], timeout=1)
                if h.get("health") != "true":
                    return None
            return i + 1
        return wait_until("an etcd leader", ok, secs) - 1

    def restart(self, i):
        self.procs[i].start()

    def server_pids(self):
        return [p.pid for p in self.procs if p.alive()]

    def count(self):
        r = http_json("http://%s/v3/kv/range" % self.addrs[0], {
            "key": b64(WEB_PREFIX), "range_end": b64("/services/web0"),
            "count_only": True}, timeout=30)
        return int(r.get("count", 0))

    def stop(self):
        for p in self.procs:
            if p.alive():
                p.p.terminate()
        for p in self.procs:
            p.stop()


class Bench:
    def __init__(self, args):
        self.args = args
        self.out = os.path.abspath(args.out)
        bd = os.path.abspath(args.build)
        self.b = argparse.Namespace(
            server=os.path.join(bd, "dsc-server"),
            agent=os.path.join(bd, "dsc-agent"),
            lookup=os.path.join(bd, "dsc-lookup"),
            load=os.path.join(bd, "tests/tools/dsc-load"),
            rpc=os.path.join(bd, "tests/tools/dsc-rpc"),
            probe=os.path.join(bd, "tests/tools/fsync-probe"),
            etcd=shutil.which("etcd"), etcdctl=shutil.which("etcdctl"))
        self.deadline = time.monotonic() + args.budget
        self.reps = env_int("BENCH_REPS", 3)
        self.clients = [int(c) for c in
                        os.environ.get("BENCH_CLIENTS", "1 16 64 256").split()]
        self.wsecs = env_int("BENCH_WRITE_SECS", 3)
        self.rsecs = env_int("BENCH_READ_SECS", 2)
        self.failovers = env_int("BENCH_FAILOVERS", 5)
        self.cli_runs = env_int("BENCH_CLI_RUNS", 100)
        self.instances = env_int("BENCH_INSTANCES", 100000)
        self.results = open(os.path.join(self.out, "results.jsonl"), "w")
        self.acked = {"dsc": 0, "etcd": 0}
        self.notes = []
        self.dsc = self.etcd = None

    def left(self):
        return self.deadline - time.monotonic()

    def record(self, **kv):
        kv["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.results.write(json.dumps(kv, sort_keys=True) + "\n")
        self.results.flush()
        return kv

    # ---- one run of dsc-load ---------------------------------------------

    def load(self, args, secs, timeout_extra=20):
        argv = [self.b.load, "-b", CLIENT_IP] + args
        try:
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=secs + timeout_extra)
        except subprocess.TimeoutExpired:
            log("dsc-load did not finish: %s" % " ".join(argv))
            return None
        if r.stderr.strip():
            log(r.stderr.strip().splitlines()[-1])
        try:
            return json.loads(r.stdout)
        except ValueError:
            log("dsc-load failed (%d): %s" % (r.returncode, " ".join(argv)))
            return None

    def pid_args(self, sys_, with_agent=False):
        pids = list(sys_.server_pids())
        if with_agent and self.dsc.agent is not None:
            pids.append(self.dsc.agent.pid)
        return [x for p in pids for x in ("-P", str(p))]

    def row_args(self, row, rep, clients):
        """dsc-load arguments of one table row, and its system."""
        d, e = self.dsc, self.etcd
        idp = "%s-r%d-c%d" % (row, rep, clients)
        if row == "reg-agent":
            return d, True, ["-X", "PUT", "-u", "/v1/catalog/register",
                             "-D", REGISTRATION, "-p", idp, "http",
                             d.agent_addr]
        if row == "reg-rpc":
            return d, False, ["-k", d.key, "-m", "catalog.register", "-w",
                              "-D", REGISTRATION, "-p", idp, "rpc",
                              d.addrs[self.dlead]]
        if row == "reg-etcd":
            return e, False, ["-D", REGISTRATION, "-p", idp, "-K",
                              WEB_PREFIX, "etcd-put", e.addrs[self.elead]]
        if row in ("get-agent", "get-agent-stale"):
            path = "/v1/health/service/web" + (
                "?stale" if row.endswith("stale") else "")
            return d, True, ["-u", path, "http", d.agent_addr]
        if row in ("get-rpc", "get-rpc-stale"):
            params = {"Service": "web"}
            if row.endswith("stale"):
                params["consistency"] = "stale"
            return d, False, ["-k", d.key, "-m", "health.service", "-D",
                              json.dumps(params), "rpc", d.addrs[self.dlead]]
        body = {"key": b64(WEB_PREFIX), "range_end": b64("/services/web0")}
        if row == "get-etcd-serializable":
            body["serializable"] = True
        return e, False, ["-X", "POST", "-u", "/v3/kv/range", "-D",
                          json.dumps(body), "http", e.addrs[self.elead]]

    def point(self, phase, row, rep, clients, secs):
        sys_, agent, args = self.row_args(row, rep, clients)
        r = self.load(["-c", str(clients), "-d", str(secs), "-W",
                       str(WARMUP)] + self.pid_args(sys_, agent) + args, secs)
        if r is None:
            r = {"ok": 0, "errors": -1}
        if row.startswith("reg-"):
            self.acked[sys_.label] += r.get("ok", 0)
        return self.record(**dict(r, phase=phase, row=row,
                                  system=sys_.label, rep=rep,
                                  clients=clients))

    def sweep(self, phase, rows, secs):
        points = []
        for rep in range(1, self.reps + 1):
            for c in self.clients:
                for row in rows:
                    if self.left() < secs + 10:
                        self.notes.append("%s: stopped at rep %d, %d "
                                          "clients: out of time" %
                                          (phase, rep, c))
                        return points
                    points.append(self.point(phase, row, rep, c, secs))
            log("%s: rep %d of %d done, %ds left" %
                (phase, rep, self.reps, self.left()))
        return points

    # ---- phases ------------------------------------------------------------

    def fsync_floor(self):
        r = subprocess.run([self.b.probe, "-n", "300", self.out],
                           capture_output=True, text=True, timeout=60)
        if r.returncode == 0:
            self.record(phase="fsync", **json.loads(r.stdout))

    def rss(self, phase):
        kv = {"dsc": sum(p.rss_kb() for p in self.dsc.procs),
              "etcd": sum(p.rss_kb() for p in self.etcd.procs)}
        if self.dsc.agent is not None:
            kv["dsc_agent"] = self.dsc.agent.rss_kb()
        self.record(phase=phase, rss_kb=kv, acked=dict(self.acked))

    def seed(self):
        """A few instances of web, for the lookups."""
        self.load(["-k", self.dsc.key, "-m", "catalog.register", "-w", "-n",
                   "5", "-D", REGISTRATION, "-p", "seed", "rpc",
                   self.dsc.addrs[self.dlead]], 10)
        self.load(["-n", "5", "-D", REGISTRATION, "-p", "seed", "-K",
                   WEB_PREFIX, "etcd-put", self.etcd.addrs[self.elead]], 10)
        self.acked["dsc"] += 5
        self.acked["etcd"] += 5

    def cli(self):
        """Whole-process time of one lookup, as a shell script pays it."""
        d, e = self.dsc, self.etcd
        if os.access(self.b.lookup, os.X_OK) and d.agent is not None:
            dsc_argv = [self.b.lookup, "--key-file", d.key, "--agent",
                        d.agent_addr, "web"]
            dsc_name = "dsc-lookup web (agent)"
        elif os.access(self.b.lookup, os.X_OK):
            dsc_argv = [self.b.lookup, "--key-file", d.key, "--server",
                        d.addrs[self.dlead], "web"]
            dsc_name = ("dsc-lookup --server LEADER web (no agent built "
                        "yet)")
        else:
            dsc_argv = [self.b.rpc, "-k", d.key, "-b", CLIENT_IP, "-s",
                        d.addrs[self.dlead], "health.service",
                        '{"Service":"web"}']
            dsc_name = ("tests/tools/dsc-rpc health.service web (leader; "
                        "dsc-lookup not built yet)")
        etcd_argv = [self.b.etcdctl, "--endpoints=http://" +
                     e.addrs[self.elead], "get", WEB_PREFIX, "--prefix"]
        env = dict(os.environ, ETCDCTL_API="3")
        for name, sys_, argv in ((dsc_name, "dsc", dsc_argv),
                                 ("etcdctl get --prefix " + WEB_PREFIX,
                                  "etcd", etcd_argv)):
            times, fails = [], 0
            for _ in range(self.cli_runs):
                if self.left() < 15:
                    self.notes.append("cli: cut short: out of time")
                    break
                t0 = time.monotonic()
                r = subprocess.run(argv, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env=env,
                                   timeout=10)
                dt = (time.monotonic() - t0) * 1000
                if r.returncode == 0:
                    times.append(dt)
                else:
                    fails += 1
            times.sort()
            self.record(phase="cli", system=sys_, command=name,
                        runs=len(times), errors=fails,
                        p50_ms=statistics.median(times) if times else 0,
                        mean_ms=statistics.mean(times) if times else 0,
                        p99_ms=times[int(len(times) * 0.99)] if times
                        else 0)

    def top_up(self):
        """Registrations until each catalog holds self.instances."""
        for sys_ in (self.dsc, self.etcd):
            want = self.instances - self.acked[sys_.label]
            if want <= 0:
                continue
            secs = int(max(5, min(150, self.left() - 120)))
            if sys_ is self.dsc:
                args = ["-k", sys_.key, "-m", "catalog.register", "-w",
                        "rpc", sys_.addrs[self.dlead]]
            else:
                args = ["-K", WEB_PREFIX, "etcd-put",
                        sys_.addrs[self.elead]]
            r = self.load(["-c", "64", "-d", str(secs), "-n", str(want),
                           "-D", REGISTRATION, "-p", "fill"] + args, secs)
            if r is not None:
                self.acked[sys_.label] += r["ok"]
                self.record(**dict(r, phase="fill", system=sys_.label))
            if self.acked[sys_.label] < self.instances:
                self.notes.append("%s holds only %d instances (%d wanted):"
                                  " out of time" % (sys_.label,
                                                    self.acked[sys_.label],
                                                    self.instances))

    def failover(self):
        rows = [("dsc", self.dsc, "rpc")]
        if self.dsc.agent is not None:
            rows.append(("dsc-agent", self.dsc, "agent"))
        rows.append(("etcd", self.etcd, "etcd"))
        for rep in range(1, self.failovers + 1):
            for name, sys_, how in rows:
                if self.left() < 40:
                    self.notes.append("failover: stopped at rep %d: out of "
                                      "time" % rep)
                    return
                lead = sys_.wait_ready(30)
                order = [sys_.addrs[lead]] + [a for j, a in
                                              enumerate(sys_.addrs)
                                              if j != lead]
                idp = "fo-%s-%d" % (name, rep)
                if how == "rpc":
                    args = ["-k", sys_.key, "-m", "catalog.register", "-w",
                            "rpc"] + order
                elif how == "agent":
                    args = ["-X", "PUT", "-u", "/v1/catalog/register",
                            "http", sys_.agent_addr]
                else:
                    args = ["-K", WEB_PREFIX, "etcd-put"] + order
                r = self.load(["-c", "1", "-d", "20", "-t", "500", "-F",
                               str(sys_.procs[lead].pid), "-A", "1", "-D",
                               REGISTRATION, "-p", idp] + args, 20)
                sys_.procs[lead].reap()
                sys_.restart(lead)
                self.record(**dict(r or {"failover_ms": -1},
                                   phase="failover", system=name, rep=rep,
                                   killed=lead + 1))
                sys_.wait_ready(60)
                # The restarted member catches up before the next kill.
                time.sleep(1)
                if sys_ is self.dsc:
                    self.dlead = sys_.wait_ready(30)
                else:
                    self.elead = sys_.wait_ready(30)

    # ---- the whole run -------------------------------------------------------

    def run(self):
        for b in ("server", "load", "rpc", "probe", "etcd", "etcdctl"):
            if not getattr(self.b, b) or not os.access(getattr(self.b, b),
                                                        os.X_OK):
                sys.exit("bench: error: missing %s (%s)" %
                         (b, getattr(self.b, b)))
        self.fsync_floor()
        try:
            self.dsc = Dsc(self.b, self.out)
            self.etcd = Etcd(self.b, self.out)
            self.dlead = self.dsc.wait_ready(30)
            self.elead = self.etcd.wait_ready(30)
            self.dsc.start_agent()
            self.record(phase="setup", agent=self.dsc.agent is not None,
                        dsc=self.dsc.addrs, etcd=self.etcd.addrs,
                        budget_s=self.args.budget)
            log("clusters up; agent: %s" %
                ("yes" if self.dsc.agent else "not built"))
            time.sleep(2)
            self.rss("rss-idle")
            self.seed()
            reads = ["get-rpc", "get-rpc-stale", "get-etcd",
                     "get-etcd-serializable"]
            writes = ["reg-rpc", "reg-etcd"]
            if self.dsc.agent is not None:
                reads = ["get-agent", "get-agent-stale"] + reads
                writes = ["reg-agent"] + writes
            self.sweep("lookup", reads, self.rsecs)
            self.cli()
            self.sweep("register", writes, self.wsecs)
            self.top_up()
            time.sleep(2)
            self.rss("rss-full")
            self.failover()
        finally:
            for s in (self.dsc, self.etcd):
                if s is not None:
                    s.stop()
            for n in self.notes:
                self.record(phase="note", note=n)
            self.results.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget", type=int, default=540)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    try:
        Bench(args).run()
    except Stop as e:
        log("interrupted (%s); every process stopped" % e)
        return 3
    here = os.path.dirname(os.path.abspath(__file__))
    return subprocess.call([sys.executable, os.path.join(here, "table.py"),
                            os.path.join(args.out, "results.jsonl"),
                            os.path.join(args.out, "table.md")])


if __name__ == "__main__":
    sys.exit(main())
