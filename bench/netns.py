"""The multi-host rig of bench/multihost.py (issue 19): dock hosts as network namespaces.

One bridge on this machine (``<subnet>.1/24``), one network namespace per dock host joined to it by
a veth pair (``<subnet>.(10+i)``), and the shared services the hosts reach ONLY over that virtual
network, all started here and stopped by ``Rig.close()``:

- a PostgreSQL 15 cluster of its own (initdb into a temporary directory, listening on the bridge
  address only, fsync on: durable commits as in production);
- a redis-server of its own (bridge address, append-only file as in compose.yaml);
- a TCP forwarder (socat, else a small Python one) from the bridge address to the object store on
  127.0.0.1 (Ceph RGW): a namespace's 127.0.0.1 is its own loopback, not this machine's.

Needs root (``ip netns``, ``ip link``) and iproute2. Used by bench/multihost.py and by
tests/deploy/test_multihost.py; the names carry the process id so that two rigs never collide.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def run(*argv: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[:1000]}")
    return proc


def netns_available() -> tuple[bool, str]:
    """Whether this process can make namespaces and bridges (root, iproute2), and why not."""
    if os.geteuid() != 0:
        return False, "not root"
    if not shutil.which("ip"):
        return False, "iproute2 (ip) not installed"
    name = f"tmh-probe-{os.getpid()}"
    proc = run("ip", "netns", "add", name, check=False)
    if proc.returncode != 0:
        return False, f"ip netns add failed: {proc.stderr.strip()}"
    run("ip", "netns", "del", name, check=False)
    if not (PG_BIN / "initdb").exists():
        return False, f"{PG_BIN}/initdb missing (PostgreSQL 15 server)"
    if not shutil.which("redis-server"):
        return False, "redis-server not installed"
    return True, ""


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_tcp(host: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing answers on {host}:{port} after {timeout:.0f} s")
            time.sleep(0.1)


class PyForwarder(threading.Thread):
    """TCP forwarder for machines without socat: one thread pair per connection."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]):
        super().__init__(daemon=True, name="forwarder")
        self.target = target
        self.sock = socket.create_server(listen, reuse_port=False)
        self.closed = False

    def run(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(1 << 20):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.closed = True
        self.sock.close()


class Rig:
    """Bridge + namespaces + own PostgreSQL, Redis and object-store forwarder. Always ``close()``."""

    def __init__(self, workdir: Path, *, hosts: int, subnet: str = "10.77.0", s3_target: tuple[str, int] | None,
                 log=print):
        self.workdir, self.hosts, self.subnet, self.log = Path(workdir), hosts, subnet, log
        self.tag = f"{os.getpid() % 100000}"
        self.bridge = f"tmh{self.tag}br"
        self.gateway = f"{subnet}.1"
        self.namespaces = [f"tmh{self.tag}-h{i + 1}" for i in range(hosts)]
        self.addresses = [f"{subnet}.{10 + i}" for i in range(hosts)]
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs = self.workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.s3_target = s3_target
        self.pg_dir: Path | None = None
        self.pg_port = self.redis_port = self.s3_port = 0
        self.forwarder: PyForwarder | None = None
        self._made_bridge = False
        self._made_ns: list[str] = []

    # --- network --------------------------------------------------------------------------------
    def net_up(self) -> None:
        in_use = run("ip", "-br", "-4", "addr").stdout
        if f" {self.subnet}." in in_use:
            raise RuntimeError(f"{self.subnet}.0/24 is already used on this machine: pass another --subnet")
        run("ip", "link", "add", self.bridge, "type", "bridge")
        self._made_bridge = True
        run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for i, (ns, addr) in enumerate(zip(self.namespaces, self.addresses)):
            outside, inside = f"tmh{self.tag}v{i + 1}", f"tmh{self.tag}p{i + 1}"
            run("ip", "netns", "add", ns)
            self._made_ns.append(ns)
            run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
            run("ip", "link", "set", inside, "netns", ns)
            run("ip", "-n", ns, "link", "set", inside, "name", "eth0")
            run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
            run("ip", "link", "set", outside, "master", self.bridge)
            run("ip", "link", "set", outside, "up")
        self.log(f"network: bridge {self.bridge} {self.gateway}/24, namespaces "
                 + ", ".join(f"{ns}={a}" for ns, a in zip(self.namespaces, self.addresses)))

    # --- services ---------------------------------------------------------------------------------
    def start(self, role: str, argv: list[str], *, env: dict | None = None, cwd: Path | None = None,
              netns: str | None = None, **kw) -> subprocess.Popen:
        if netns:
            argv = ["ip", "netns", "exec", netns, *argv]  # exec: the pid is the program itself
        fh = open(self.logs / f"{role}.log", "wb")
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                **kw)
        fh.close()
        self.procs[role] = proc
        return proc

    def services_up(self) -> None:
        # PostgreSQL: initdb as the postgres user (it refuses root) in a directory of its own.
        self.pg_dir = Path(tempfile.mkdtemp(prefix="temoin-mh-pg-"))
        shutil.chown(self.pg_dir, "postgres", "postgres")
        data = self.pg_dir / "data"
        run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
            "--locale=C.UTF-8", user="postgres", group="postgres", cwd=self.pg_dir)
        self.pg_port = free_port(self.gateway)
        with open(data / "postgresql.conf", "a") as fh:
            fh.write(f"\nlisten_addresses = '{self.gateway}'\nport = {self.pg_port}\n"
                     f"unix_socket_directories = '{self.pg_dir}'\nmax_connections = 200\nshared_buffers = 256MB\n")
        with open(data / "pg_hba.conf", "a") as fh:
            fh.write(f"host all all {self.subnet}.0/24 trust\n")
        self.start("postgresql", [str(PG_BIN / "postgres"), "-D", str(data)], user="postgres", group="postgres",
                   cwd=self.pg_dir)
        # Redis: append-only, as compose.yaml runs it.
        redis_dir = self.workdir / "redis"
        redis_dir.mkdir(exist_ok=True)
        self.redis_port = free_port(self.gateway)
        self.start("redis", ["redis-server", "--bind", self.gateway, "--port", str(self.redis_port), "--dir",
                             str(redis_dir), "--appendonly", "yes", "--save", "", "--protected-mode", "no"])
        # The object store, reached through the bridge address.
        if self.s3_target:
            self.s3_port = free_port(self.gateway)
            host, port = self.s3_target
            if shutil.which("socat"):
                self.start("s3-forwarder", ["socat", f"TCP-LISTEN:{self.s3_port},bind={self.gateway},fork,reuseaddr",
                                            f"TCP:{host}:{port}"])
            else:
                self.forwarder = PyForwarder((self.gateway, self.s3_port), (host, port))
                self.forwarder.start()
        wait_tcp(self.gateway, self.pg_port)
        wait_tcp(self.gateway, self.redis_port)
        if self.s3_port:
            wait_tcp(self.gateway, self.s3_port)
        self._wait_pg()
        self.log(f"services on {self.gateway}: PostgreSQL :{self.pg_port}, Redis :{self.redis_port}"
                 + (f", object store :{self.s3_port} → {self.s3_target[0]}:{self.s3_target[1]}" if self.s3_port else ""))

    def _wait_pg(self) -> None:
        deadline = time.monotonic() + 30
        while run(str(PG_BIN / "pg_isready"), "-h", self.gateway, "-p", str(self.pg_port), check=False).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not become ready: " + self.tail("postgresql"))
            time.sleep(0.2)
        run(str(PG_BIN / "createdb"), "-h", self.gateway, "-p", str(self.pg_port), "-U", "postgres", "temoin")

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@{self.gateway}:{self.pg_port}/temoin"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.gateway}:{self.redis_port}/0"

    @property
    def s3_url(self) -> str:
        return f"http://{self.gateway}:{self.s3_port}"

    def tail(self, role: str, n: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return (self.logs / f"{role}.log").read_text(errors="replace")[-n:]
        return ""

    def check_alive(self, roles=None) -> None:
        dead = {r: p.returncode for r, p in self.procs.items() if (roles is None or r in roles) and p.poll() is not None}
        if dead:
            raise RuntimeError(f"process(es) exited: {dead}\n" + "\n".join(f"--- {r}\n{self.tail(r)}" for r in dead))

    def stop(self, role: str, timeout: float = 30) -> None:
        proc = self.procs.pop(role, None)
        if proc is None or proc.poll() is not None:
            return
        # PostgreSQL: SIGINT is its fast shutdown (SIGTERM would wait for every client to leave).
        sig = signal.SIGINT if role == "postgresql" else signal.SIGTERM
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def close(self) -> None:
        """Stop every process started here (services last), delete namespaces, bridge, directories."""
        order = [r for r in self.procs if r not in ("postgresql", "redis", "s3-forwarder")]
        for role in order:  # TERM them all first, then wait: a warm shutdown each, in parallel
            p = self.procs[role]
            if p.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(p.pid, signal.SIGTERM)
        for role in order:
            self.stop(role)
        for role in ("s3-forwarder", "redis", "postgresql"):
            self.stop(role)
        if self.forwarder:
            self.forwarder.close()
        for ns in self._made_ns:  # deleting a namespace deletes its veth end, hence the pair
            run("ip", "netns", "del", ns, check=False)
        self._made_ns = []
        if self._made_bridge:
            run("ip", "link", "del", self.bridge, check=False)
            self._made_bridge = False
        if self.pg_dir:
            shutil.rmtree(self.pg_dir, ignore_errors=True)
            self.pg_dir = None
