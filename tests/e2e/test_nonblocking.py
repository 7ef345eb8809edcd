"""Neither logging nor the background loops may hold up request handling.

- Logging: the node's stderr is a pipe that nobody reads. Once its 64 KiB are full, a
  synchronous write(2) of a log line blocks the thread that logs it; with one I/O thread
  that is every request. The node must go on answering (the async logger drops lines
  and counts them in continuum_log_dropped_lines_total) and still stop on SIGTERM.
- Background loops (revocation sync, jobs, notifications, EHR sync, probes) run on their
  own thread ("continuum-bg"), not on the I/O thread of shard 0.
"""

from __future__ import annotations

import os
import re
import time
import unittest
from pathlib import Path

from harness import ContinuumTestCase


class NonBlockingTest(ContinuumTestCase):
    START_SERVER = False
    PATIENTS = 50

    def test_requests_are_answered_while_stderr_is_a_full_pipe(self):
        r_fd, w_fd = os.pipe()
        server = self.cluster.add_server("node-1", {"server": {"threads": 1}}, start=False)
        server.stderr_fd = w_fd
        try:
            server.start()
        finally:
            os.close(w_fd)  # the child holds its copy; nobody reads r_fd
        try:
            # Every request writes an access line of ~250 bytes: 1,500 of them are several
            # times what the pipe holds.
            slow, failed = [], []
            t0 = time.monotonic()
            for i in range(1500):
                try:
                    r = server.get("/healthz", timeout=5)
                    if r.status != 200:
                        failed.append((i, r.status))
                    elif r.elapsed > 1.0:
                        slow.append((i, round(r.elapsed, 2)))
                except OSError as e:
                    failed.append((i, repr(e)))
                    break  # a blocked node: no point in waiting 5 s per request
            took = time.monotonic() - t0
            self.assertEqual(failed, [], f"requests not answered with stderr full ({took:.1f}s)")
            self.assertLessEqual(len(slow), 5, f"slow answers: {slow[:10]}")
            # The logger is asynchronous: its writer waits up to 200 ms on the full pipe
            # before it counts a line as dropped, and the 1,500 answers can all be out
            # before that (CI once read the counter at 0). The counter must move within
            # a few seconds; it is read until then, not the requests repeated.
            deadline = time.monotonic() + 5
            while True:
                m = server.get("/metrics", timeout=5)
                self.assertEqual(m.status, 200, m)
                dropped = sum(int(float(v)) for v in re.findall(
                    r'^continuum_log_dropped_lines_total\{[^}]*\} (\S+)$', m.text, re.M))
                if dropped > 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            self.assertGreater(dropped, 0, "no dropped log lines counted within 5 s, yet "
                               "nobody reads stderr")
            print(f"\n1500 requests in {took:.1f}s with stderr unread; {dropped} log lines dropped")
            # Shutdown is bounded too: the writer does not wait forever on the pipe.
            t1 = time.monotonic()
            code = server.stop(timeout=20)
            self.assertEqual(code, 0, "the node did not exit cleanly on SIGTERM")
            self.assertLess(time.monotonic() - t1, 15)
        finally:
            server.stop(timeout=5)
            os.close(r_fd)

    def test_background_loops_have_their_own_thread(self):
        server = self.cluster.add_server("node-2", {"server": {"threads": 1}})
        try:
            names = [Path(t, "comm").read_text().strip()
                     for t in Path(f"/proc/{server.pid}/task").iterdir()]
            self.assertIn("continuum-bg", names, f"threads: {names}")
            self.assertEqual(server.get("/readyz").status, 200)
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main()
