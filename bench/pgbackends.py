"""CPU seconds of the PostgreSQL backends serving one database while a tool runs (sampled from /proc)."""

from __future__ import annotations

import threading
from types import TracebackType

import psutil
import psycopg


class BackendCpu:
    """`with BackendCpu(admin_dsn, dbname) as cpu: …` then `cpu.seconds`: the user+system CPU of every
    backend connected to `dbname` meanwhile, each read at most `interval` before it ended (an undercount
    of at most that much per backend)."""

    def __init__(self, admin_dsn: str, dbname: str, interval: float = 0.05) -> None:
        self.admin_dsn, self.dbname, self.interval = admin_dsn, dbname, interval
        self._latest: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backend-cpu", daemon=True)

    @property
    def seconds(self) -> float:
        return sum(self._latest.values())

    def __enter__(self) -> BackendCpu:
        self._conn = psycopg.connect(self.admin_dsn, autocommit=True)
        self._own = self._conn.info.backend_pid
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        query = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> %s"
        while not self._stop.is_set():
            for (pid,) in self._conn.execute(query, (self.dbname, self._own)).fetchall():
                try:
                    times = psutil.Process(pid).cpu_times()
                except psutil.Error:
                    continue  # it ended between the query and the read
                self._latest[pid] = float(times.user + times.system)
            self._stop.wait(self.interval)
