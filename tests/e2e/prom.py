"""A real Prometheus (Debian's `prometheus`) for tests: scrapes the given portal nodes'
/metrics every second with their ops token, on a free port, in the test's own folder.
Started and stopped by PID (stop() also runs as a cleanup when a test fails)."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

from harness import free_port, stop_process, wait_until

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class Prometheus:
    def __init__(self, folder: Path, port: int | None = None):
        self.dir = Path(folder)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, targets: list[int], token_file: Path, timeout: float = 60) -> "Prometheus":
        """Scrapes 127.0.0.1:<port>/metrics of each target with token_file's bearer token."""
        self.dir.mkdir(parents=True, exist_ok=True)
        cfg = self.dir / "prometheus.yml"
        # JSON is YAML: no YAML writer needed.
        cfg.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{
                "job_name": "portal", "scrape_timeout": "900ms",
                "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in targets]}]}]}))
        self.log = open(self.dir / "prometheus.log", "ab")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        wait_until(self.ready, timeout, interval=0.25, message=f"Prometheus ready on {self.url}")
        return self

    def ready(self) -> bool:
        if self.proc and self.proc.poll() is not None:
            raise RuntimeError(f"prometheus exited {self.proc.returncode}: see {self.dir / 'prometheus.log'}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def up_targets(self) -> int:
        """Targets whose last scrape succeeded."""
        with urllib.request.urlopen(self.url + "/api/v1/query?query=sum(up)", timeout=2) as r:
            res = json.loads(r.read())["data"]["result"]
        return int(float(res[0]["value"][1])) if res else 0

    def stop(self) -> None:
        stop_process(self.proc, 15, "prometheus")
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
