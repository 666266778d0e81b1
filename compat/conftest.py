"""Fixtures: a combined Odradek node (broker + controller) started from the built binaries on
free loopback ports, formatted with odradek-storage, stopped with SIGTERM (or killed) at the end.

The binaries come from $ODRADEK_BIN_DIR (scripts/test.sh sets it to the cargo target dir)."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

BIN_DIR = Path(os.environ.get("ODRADEK_BIN_DIR", "target/debug"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """`extra_listeners` maps more listener names to their security protocols; their ports are
    in `ports` (`bootstrap_of(name)` gives the address)."""

    def __init__(self, workdir: Path, overrides=None, extra_listeners=None, format_args=()):
        self.workdir = workdir
        self.port = free_port()
        self.controller_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.config = workdir / "node.properties"
        self.ports = {name: free_port() for name in (extra_listeners or {})}
        listeners = [f"PLAINTEXT://127.0.0.1:{self.port}"] + [f"{n}://127.0.0.1:{p}" for n, p in self.ports.items()]
        lines = {
            "node.id": "1",
            "process.roles": "broker,controller",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": ",".join(listeners + [f"CONTROLLER://127.0.0.1:{self.controller_port}"]),
            "controller.listener.names": "CONTROLLER",
            "log.dirs": str(workdir / "data"),
            # A one-node cluster: the offsets topic has one replica (Kafka's default is 3).
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        if extra_listeners:
            protocols = {"PLAINTEXT": "PLAINTEXT", "CONTROLLER": "PLAINTEXT", **extra_listeners}
            lines["listener.security.protocol.map"] = ",".join(f"{n}:{p}" for n, p in protocols.items())
            lines["inter.broker.listener.name"] = "PLAINTEXT"
        lines.update(overrides or {})
        self.config.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        cluster_id = subprocess.run([BIN_DIR / "odradek-storage", "random-uuid"], check=True, capture_output=True, text=True).stdout.strip()
        subprocess.run([BIN_DIR / "odradek-storage", "format", "-t", cluster_id, "-c", self.config, *format_args], check=True, capture_output=True)
        self.proc = None
        self.start()

    def bootstrap_of(self, listener):
        return f"127.0.0.1:{self.ports[listener]}"

    def start(self):
        self.log = open(self.workdir / "node.log", "a")
        self.proc = subprocess.Popen([BIN_DIR / "odradek-broker", "-c", self.config], stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.time() + 30
        while time.time() < deadline:
            if "broker ready" in (self.workdir / "node.log").read_text():
                return
            if self.proc.poll() is not None:
                raise RuntimeError("node exited:\n" + (self.workdir / "node.log").read_text())
            time.sleep(0.05)
        raise RuntimeError("node not ready:\n" + (self.workdir / "node.log").read_text())

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        # The next start must see "broker ready" again, not this run's line.
        (self.workdir / "node.log").rename(self.workdir / f"node-{time.time_ns()}.log")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = Node(tmp_path_factory.mktemp("node"))
    yield n
    n.stop()


@pytest.fixture
def fresh_node(tmp_path):
    n = Node(tmp_path)
    yield n
    n.stop()


@pytest.fixture
def no_autocreate_node(tmp_path):
    n = Node(tmp_path, {"auto.create.topics.enable": "false"})
    yield n
    n.stop()


def roles_of(name):
    return "broker" if name.startswith("broker-") else "controller"


class Cluster:
    """A quorum of `controllers` controller processes and `brokers` broker processes, all
    formatted for one cluster. More brokers can join (`add_broker`), and any node can be killed
    (`kill9`) and started again in place (`restart`)."""

    def __init__(self, workdir: Path, brokers=3, controllers=3, extra=None, broker_dirs=1, broker_listener="PLAINTEXT"):
        self.workdir = workdir
        self.extra = extra or {}
        # The brokers' one listener's name (its protocol comes from the map in `extra`).
        self.broker_listener = broker_listener
        # Brokers get this many log.dirs: broker-N-a, broker-N-b, ... (one: broker-N).
        self.broker_dirs = broker_dirs
        cports = [free_port() for _ in range(controllers)]
        self.voters = ",".join(f"{100 + i}@127.0.0.1:{p}" for i, p in enumerate(cports))
        self.cluster_id = subprocess.run([BIN_DIR / "odradek-storage", "random-uuid"], check=True, capture_output=True, text=True).stdout.strip()
        self.procs = {}
        self.commands = {}
        self.ports = {}
        try:
            for i, cport in enumerate(cports):
                self._start("odradek-controller", f"controller-{i}", 100 + i, "controller", f"CONTROLLER://127.0.0.1:{cport}")
            for b in range(1, brokers + 1):
                self.add_broker(b, wait=False)
            for b in range(1, brokers + 1):
                self.wait_ready(f"broker-{b}")
        except BaseException:
            # A cluster that did not come up must not leave its processes behind.
            self.stop()
            raise

    @property
    def bootstrap(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.ports.values())

    def log_dirs(self, name):
        if roles_of(name) != "broker" or self.broker_dirs == 1:
            return [self.workdir / name]
        return [self.workdir / f"{name}-{chr(ord('a') + i)}" for i in range(self.broker_dirs)]

    def _start(self, binary, name, node_id, roles, listener):
        cfg = self.workdir / f"{name}.properties"
        lines = {"node.id": node_id, "process.roles": roles, "controller.quorum.voters": self.voters,
                 "listeners": listener, "controller.listener.names": "CONTROLLER",
                 "log.dirs": ",".join(str(d) for d in self.log_dirs(name))}
        lines.update(self.extra)
        cfg.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        subprocess.run([BIN_DIR / "odradek-storage", "format", "-t", self.cluster_id, "-c", cfg], check=True, capture_output=True)
        self.commands[name] = [BIN_DIR / binary, "-c", cfg]
        self.restart(name)

    def add_broker(self, b, wait=True):
        """Formats and starts broker `b` (node.id b) for this cluster."""
        self.ports[b] = free_port()
        self._start("odradek-broker", f"broker-{b}", b, "broker", f"{self.broker_listener}://127.0.0.1:{self.ports[b]}")
        if wait:
            self.wait_ready(f"broker-{b}")

    def add_controller(self, i):
        """Formats and starts controller `100 + i` (not among the configured voters: it joins
        with `metadata-quorum add-controller`); returns its config file."""
        self._start("odradek-controller", f"controller-{i}", 100 + i, "controller", f"CONTROLLER://127.0.0.1:{free_port()}")
        return self.workdir / f"controller-{i}.properties"

    def restart(self, name):
        log = self.workdir / f"{name}.log"
        if log.exists():
            log.rename(self.workdir / f"{name}-{time.time_ns()}.log")
        self.procs[name] = subprocess.Popen(self.commands[name], stdout=subprocess.DEVNULL, stderr=open(log, "w"))

    def kill9(self, name):
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def stop_node(self, name, timeout=30):
        """SIGTERM (a controlled shutdown), waiting for the process to exit."""
        self.procs[name].send_signal(signal.SIGTERM)
        self.procs[name].wait(timeout=timeout)

    def wait_ready(self, name, timeout=30):
        log = self.workdir / f"{name}.log"
        deadline = time.time() + timeout
        while "broker ready" not in log.read_text():
            if time.time() > deadline or self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} not ready:\n" + log.read_text())
            time.sleep(0.05)

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def cluster3(tmp_path):
    c = Cluster(tmp_path, brokers=3)
    yield c
    c.stop()


class TutorialCluster:
    """Kafka's classic three-node KRaft tutorial cluster: three combined nodes
    (process.roles=broker,controller), default.replication.factor=3, min.insync.replicas=2,
    each formatted with odradek-storage. Nodes can be killed, paused and restarted in place.

    With `netns=True` each node runs in a network namespace of its own (`ip netns`, a veth pair
    on a bridge: 10.213.S.1i), so a node's network can be cut and healed (`cut`, `heal`) while
    its process keeps running; the test process reaches the nodes over the bridge."""

    def __init__(self, workdir: Path, extra=None, netns=False, per_node=None):
        self.workdir = workdir
        self.ids = [1, 2, 3]
        self.netns = None
        self.hosts = {i: "127.0.0.1" for i in self.ids}
        if netns:
            self.netns = Namespaces(self.ids)
            self.hosts = {i: self.netns.address(i) for i in self.ids}
        self.ports = {i: free_port() for i in self.ids}
        self.cports = {i: free_port() for i in self.ids}
        voters = ",".join(f"{i}@{self.hosts[i]}:{self.cports[i]}" for i in self.ids)
        cluster_id = subprocess.run([BIN_DIR / "odradek-storage", "random-uuid"], check=True, capture_output=True, text=True).stdout.strip()
        self.procs = {}
        self.configs = {}
        for i in self.ids:
            h = self.hosts[i]
            lines = {
                "node.id": str(i),
                "process.roles": "broker,controller",
                "controller.quorum.voters": voters,
                "listeners": f"PLAINTEXT://{h}:{self.ports[i]},CONTROLLER://{h}:{self.cports[i]}",
                "inter.broker.listener.name": "PLAINTEXT",
                "controller.listener.names": "CONTROLLER",
                "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "log.dirs": str(workdir / f"node-{i}"),
                "num.partitions": "3",
                "default.replication.factor": "3",
                "min.insync.replicas": "2",
                "offsets.topic.replication.factor": "3",
                "group.initial.rebalance.delay.ms": "0",
            }
            lines.update(extra or {})
            lines.update(per_node(i) if per_node else {})
            cfg = workdir / f"node-{i}.properties"
            cfg.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
            subprocess.run([BIN_DIR / "odradek-storage", "format", "-t", cluster_id, "-c", cfg], check=True, capture_output=True)
            self.configs[i] = cfg
        for i in self.ids:
            self.start(i, wait=False)
        for i in self.ids:
            self.wait_ready(i)
        self.bootstrap = ",".join(f"{self.hosts[i]}:{self.ports[i]}" for i in self.ids)

    def cut(self, i):
        """Takes node i's network down: its connections hang, nothing reaches it."""
        self.netns.set_link(i, "down")

    def heal(self, i):
        self.netns.set_link(i, "up")

    def log_path(self, i):
        return self.workdir / f"node-{i}.log"

    def start(self, i, wait=True):
        # One log per start, so a restart waits for its own "broker ready".
        log = self.log_path(i)
        if log.exists():
            log.rename(self.workdir / f"node-{i}-{time.time_ns()}.log")
        prefix = self.netns.exec_prefix(i) if self.netns else []
        self.procs[i] = subprocess.Popen(prefix + [BIN_DIR / "odradek-broker", "-c", self.configs[i]],
                                         stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        if wait:
            self.wait_ready(i)

    def wait_ready(self, i, timeout=60):
        deadline = time.time() + timeout
        while "broker ready" not in self.log_path(i).read_text():
            if self.procs[i].poll() is not None:
                raise RuntimeError(f"node {i} exited:\n" + self.log_path(i).read_text())
            if time.time() > deadline:
                raise RuntimeError(f"node {i} not ready:\n" + self.log_path(i).read_text())
            time.sleep(0.05)

    def kill9(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def stop_node(self, i, timeout=30):
        """SIGTERM, waiting for a clean exit."""
        self.procs[i].send_signal(signal.SIGTERM)
        self.procs[i].wait(timeout=timeout)

    def pause(self, i):
        self.procs[i].send_signal(signal.SIGSTOP)

    def resume(self, i):
        self.procs[i].send_signal(signal.SIGCONT)

    def stop(self):
        if self.netns:
            for i in self.ids:
                self.heal(i)
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.netns:
            self.netns.remove()


class Namespaces:
    """One network namespace per node, each with a veth pair into a bridge of the test's own
    (names and a 10.213.S.0/24 subnet chosen per run, removed at the end)."""

    def __init__(self, ids):
        import random
        self.ids = ids
        self.s = random.randint(2, 250)
        self.tag = f"odr{os.getpid() % 10000}{self.s}"
        self.bridge = f"{self.tag}b"[:15]
        run = lambda *cmd: subprocess.run(cmd, check=True, capture_output=True)
        self.created = []
        try:
            run("ip", "link", "add", self.bridge, "type", "bridge")
            self.created.append(("link", self.bridge))
            run("ip", "addr", "add", f"10.213.{self.s}.1/24", "dev", self.bridge)
            run("ip", "link", "set", self.bridge, "up")
            for i in ids:
                ns, veth = self.ns(i), f"{self.tag}v{i}"[:15]
                run("ip", "netns", "add", ns)
                self.created.append(("netns", ns))
                run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
                self.created.append(("link", veth))
                run("ip", "link", "set", veth, "master", self.bridge, "up")
                run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
                run("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
                run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        except subprocess.CalledProcessError as e:
            self.remove()
            raise RuntimeError(f"cannot set up network namespaces: {e.cmd}: {e.stderr.decode()}") from e

    def ns(self, i):
        return f"{self.tag}n{i}"

    def address(self, i):
        return f"10.213.{self.s}.{10 + i}"

    def exec_prefix(self, i):
        return ["ip", "netns", "exec", self.ns(i)]

    def set_link(self, i, state):
        subprocess.run(["ip", "netns", "exec", self.ns(i), "ip", "link", "set", "eth0", state],
                       check=True, capture_output=True)

    def remove(self):
        for kind, name in reversed(self.created):
            cmd = ["ip", "netns", "del", name] if kind == "netns" else ["ip", "link", "del", name]
            subprocess.run(cmd, capture_output=True)
        self.created = []


@pytest.fixture
def tutorial_cluster(tmp_path):
    c = TutorialCluster(tmp_path)
    yield c
    c.stop()


@pytest.fixture
def netns_cluster(tmp_path):
    """The tutorial cluster with one network namespace per node, and two replica fetchers
    (connections) per source broker (num.replica.fetchers=2), so that a cut and a heal are
    survived by several fetchers at once. Needs CAP_NET_ADMIN (root): skipped, saying so,
    without it."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CAP_NET_ADMIN)")
    c = TutorialCluster(tmp_path, extra={"num.replica.fetchers": "2"}, netns=True)
    yield c
    c.stop()
