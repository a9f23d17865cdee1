"""A Redis Sentinel set on loopback for tests: one master, one replica, three Sentinels.

Every server is the bundled ``redis-server`` (``pipeline/embedded_redis.find_redis_server``;
the same binary runs ``--sentinel``) in its own process group, on free ports, with its files in
a temp dir; :meth:`SentinelSet.stop` kills every group it ever started. The Sentinels judge
the master down after ``down_after_ms`` (1 s here, 30 s is the usual production value) so a
failover completes in a few seconds.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import redis

from pipeline.embedded_redis import find_redis_server
from tests.conftest import free_port, stop_group, wait_for

SERVICE = "mymaster"


class SentinelSet:
    def __init__(self, root: Path, *, down_after_ms: int = 1000, failover_timeout_ms: int = 10_000,
                 password: str | None = None, service: str = SERVICE, redis_conf: Path | None = None,
                 sentinel_conf: Path | None = None):
        """``redis_conf`` / ``sentinel_conf``: start from these files (``deploy/sentinel/``),
        with this set's ports, loopback, temp dir and timings put in place of theirs."""
        self.service, self.redis_conf, self.sentinel_conf = service, redis_conf, sentinel_conf
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.binary = find_redis_server()
        self.down_after_ms, self.failover_timeout_ms = down_after_ms, failover_timeout_ms
        self.password = password
        self.ports = {"a": free_port(), "b": free_port()}
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: dict[str, subprocess.Popen] = {}
        self.retired: list[subprocess.Popen] = []

    # -- URLs ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The ``redis+sentinel://`` URL nassav is given."""
        auth = f":{self.password}@" if self.password else ""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{auth}{hosts}/{self.service}/0"

    def direct(self, name: str) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.ports[name], password=self.password,
                           socket_timeout=2, socket_connect_timeout=1, decode_responses=True)

    # -- processes ----------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        old = self.procs.get(name)
        if old is not None:
            self.retired.append(old)
        p = subprocess.Popen([self.binary, *args], cwd=self.root, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = p
        return p

    def start_server(self, name: str, replica_of: str | None = None) -> None:
        """Start data server ``name`` ("a" or "b"), a replica of ``replica_of`` when given."""
        port = self.ports[name]
        args = []
        if self.redis_conf:  # Redis applies `dir` as it reads it: ours goes in place of the file's
            conf = self.root / f"redis-{name}.conf"
            conf.write_text(_with_lines(self.redis_conf, {"dir": f"dir {self.root}"}))
            args.append(str(conf))
        args += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.root), "--save", "",
                "--appendonly", "no", "--dbfilename", f"dump-{name}.rdb",
                "--logfile", str(self.root / f"redis-{name}.log"), "--daemonize", "no"]
        if self.password:
            args += ["--requirepass", self.password, "--masterauth", self.password]
        if replica_of:
            args += ["--replicaof", "127.0.0.1", str(self.ports[replica_of])]
        self._spawn(name, args)
        c = self.direct(name)
        try:
            def up():
                if self.procs[name].poll() is not None:
                    raise AssertionError(f"redis {name} exited: {self.log(name)}")
                try:
                    info = c.info("replication")
                except (redis.ConnectionError, redis.BusyLoadingError, OSError):
                    return False
                return not replica_of or info.get("master_link_status") == "up"
            wait_for(up, 30, 0.05, f"redis {name} to answer (and sync when a replica)")
        finally:
            c.close()

    def start_sentinel(self, i: int, master: str) -> None:
        port = self.sentinel_ports[i]
        conf = self.root / f"sentinel-{i}.conf"  # a Sentinel rewrites its own config: one each
        mine = {"port": f"port {port}", "bind": "bind 127.0.0.1", "dir": f"dir {self.root}",
                "logfile": f"logfile {self.root / f'sentinel-{i}.log'}",
                "sentinel monitor": f"sentinel monitor {self.service} 127.0.0.1 {self.ports[master]} 2",
                "sentinel down-after-milliseconds":
                    f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}",
                "sentinel failover-timeout": f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}"}
        if self.password:
            mine["sentinel auth-pass"] = f"sentinel auth-pass {self.service} {self.password}"
        if self.sentinel_conf:
            conf.write_text(_with_lines(self.sentinel_conf, mine))
        else:
            conf.write_text("\n".join([*mine.values(), f"sentinel parallel-syncs {self.service} 1"]) + "\n")
        self._spawn(f"sentinel-{i}", [str(conf), "--sentinel"])

    def start(self) -> "SentinelSet":
        """Master "a", replica "b", three Sentinels that agree on "a" and know "b"."""
        self.start_server("a")
        self.start_server("b", replica_of="a")
        for i in range(3):
            self.start_sentinel(i, "a")
        wait_for(lambda: self.sentinels_agree("a", replicas=1), 30, 0.1,
                 "three Sentinels to see master a with its replica and each other")
        return self

    def sentinels_agree(self, master: str, *, replicas: int = 0) -> bool:
        """Every Sentinel names ``master`` and sees ``replicas`` replicas and two other Sentinels."""
        want = ("127.0.0.1", self.ports[master])
        for port in self.sentinel_ports:
            s = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, decode_responses=True)
            try:
                addr = s.sentinel_get_master_addr_by_name(self.service)
                state = s.sentinel_master(self.service)
            except (redis.RedisError, OSError):
                return False
            finally:
                s.close()
            if not addr or (addr[0], int(addr[1])) != want:
                return False
            if int(state.get("num-slaves", 0)) < replicas or int(state.get("num-other-sentinels", 0)) < 2:
                return False
        return True

    def master_name(self) -> str | None:
        """Which data server the Sentinels (a majority of those that answer) name master."""
        votes: dict[str, int] = {}
        for port in self.sentinel_ports:
            s = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, decode_responses=True)
            try:
                addr = s.sentinel_get_master_addr_by_name(self.service)
            except (redis.RedisError, OSError):
                continue
            finally:
                s.close()
            for name, p in self.ports.items():
                if addr and int(addr[1]) == p:
                    votes[name] = votes.get(name, 0) + 1
        best = max(votes.items(), key=lambda kv: kv[1], default=(None, 0))
        return best[0] if best[1] >= 2 else None

    def kill(self, name: str) -> float:
        """SIGKILL data server ``name`` (its whole group); returns the wall time."""
        p = self.procs[name]
        at = time.time()
        stop_group(p, signal.SIGKILL, timeout_s=1)
        return at

    def log(self, name: str) -> str:
        path = self.root / (f"redis-{name}.log" if name in self.ports else f"{name}.log")
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        for p in [*self.procs.values(), *self.retired]:
            stop_group(p, signal.SIGKILL, timeout_s=1)


def _with_lines(path: Path, mine: dict[str, str]) -> str:
    """``path``'s config lines with ``mine`` (directive → line) in place of the file's own
    (the machine-specific ones: addresses, ports, dirs); those it lacks are appended."""
    mine = dict(mine)
    lines = []
    for line in path.read_text().splitlines():
        key = next((k for k in mine if line.startswith(k + " ")), None)
        lines.append(mine.pop(key) if key else line)
    return "\n".join([*lines, *mine.values()]) + "\n"
