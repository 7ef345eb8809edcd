"""Self-test of the e2e harness. Needs only PostgreSQL (scripts/pg-tmp), not the
continuum binary: the schema is applied with psql from db/migrations, which also
checks that the audit table's tamper protection and its bypass used by
test_audit.py behave as the suite assumes."""

import shutil
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness
from harness import Cluster, parse_raw_response, to_toml


class PgHarnessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(label="harness")
        cls.addClassCleanup(cls.cluster.close)
        cls.cluster.start(migrate=False, seed=False)
        for f in sorted((harness.REPO / "db" / "migrations").glob("*.sql")):
            cls.cluster.sql(f.read_text())

    def test_psql_helpers_quote_variables(self):
        c = self.cluster
        self.assertEqual(c.scalar("SELECT :'v'::text AS v", v="x' OR '1'='1"), "x' OR '1'='1")
        rows = c.rows("SELECT g AS n, 'a|b' AS s FROM generate_series(1, 3) g")
        self.assertEqual(rows, [{"n": 1, "s": "a|b"}, {"n": 2, "s": "a|b"}, {"n": 3, "s": "a|b"}])
        self.assertEqual(c.rows("SELECT 1 AS x WHERE false"), [])
        with self.assertRaises(RuntimeError):
            c.sql("SELECT * FROM no_such_table")

    def test_audit_table_append_only_and_replica_bypass(self):
        c = self.cluster
        c.sql("""INSERT INTO audit_event (node_id, seq, recorded_at, region, request_id, actor, role,
                   action, client_address, purpose_of_use, outcome, prev_hash, hash, record)
                 VALUES ('selftest', 1, now(), 'e2e', 'rid-1', 'demo-provider', 'provider', 'read',
                   '127.0.0.1', 'TREAT', 'success', '', 'h', '{"actor":"demo-provider"}')""")
        with self.assertRaisesRegex(RuntimeError, "append-only"):
            c.sql("UPDATE audit_event SET actor = 'mallory' WHERE node_id = 'selftest'")
        c.sql("""SET session_replication_role = replica;
                 UPDATE audit_event SET actor = 'mallory', record = replace(record, actor, 'mallory')
                 WHERE node_id = 'selftest' AND seq = 1;""")
        row = c.rows("SELECT actor, record FROM audit_event WHERE node_id = 'selftest'")[0]
        self.assertEqual(row, {"actor": "mallory", "record": '{"actor":"mallory"}'})
        self.assertEqual(len(c.audit_rows("rid-1")), 1)

    def test_stop_start_keeps_url_and_data(self):
        c = self.cluster
        url = c.url
        c.sql("CREATE TABLE IF NOT EXISTS keepme (x int); INSERT INTO keepme VALUES (42);")
        c.pg.stop()
        self.assertFalse(c.pg.running())
        self.assertIsNone(c.pg.postmaster_pid())
        with self.assertRaises(RuntimeError):
            c.sql("SELECT 1")
        c.pg.start()
        self.assertEqual(c.url, url)
        self.assertTrue(c.pg.running())
        self.assertEqual(c.scalar("SELECT max(x) FROM keepme"), 42)

    def test_kill_and_recover(self):
        c = self.cluster
        pid = c.pg.postmaster_pid()
        self.assertTrue(pid)
        c.pg.kill()
        self.assertFalse(harness._pid_alive(pid))
        harness.wait_until(lambda: not c.pg.running(), 10, message="postgres down")
        c.pg.start()
        self.assertEqual(c.scalar("SELECT 1 AS one"), 1)


class CleanupTest(unittest.TestCase):
    def test_close_stops_postgres_and_removes_folder(self):
        c = Cluster(label="cleanup")
        try:
            c.start(migrate=False, seed=False)
            pid = c.pg.postmaster_pid()
            self.assertTrue(pid and harness._pid_alive(pid))
        finally:
            c.close()
        self.assertFalse(harness._pid_alive(pid))
        self.assertFalse(c.dir.exists() and not harness.KEEP)
        c.close()  # idempotent


class SanitizerReportTest(unittest.TestCase):
    """A node whose stderr holds an ASan/UBSan/LSan report fails its test class at close."""

    ASAN = ("=================================================================\n"
            "==4242==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010\n"
            "READ of size 8 at 0x602000000010 thread T1\n"
            "    #0 0x55d in continuum::http::Server::Impl::Serve src/http/server.cpp:180\n")
    UBSAN = "src/portal/access.cpp:160:10: runtime error: signed integer overflow\n"
    LSAN = ("==77==ERROR: LeakSanitizer: detected memory leaks\n"
            "SUMMARY: AddressSanitizer: 64 byte(s) leaked in 1 allocation(s).\n")

    def close_with_stderr(self, text: str):
        c = Cluster(label="sanitizer")
        s = harness.Server(c, "node-1")
        c.servers.append(s)
        s.stderr_path.write_text("==== e2e: start 12:00:00 port 1\nlog line\n" + text)
        try:
            c.close()
        finally:
            shutil.rmtree(c.dir, ignore_errors=True)

    def test_report_fails_close(self):
        for text, needle in ((self.ASAN, "heap-use-after-free"), (self.UBSAN, "runtime error"),
                             (self.LSAN, "detected memory leaks")):
            with self.subTest(needle=needle):
                with self.assertRaisesRegex(AssertionError, needle):
                    self.close_with_stderr(text)

    def test_clean_stderr_passes(self):
        self.close_with_stderr('{"msg":"a runtime error: in a log message is no report"}\n')

    def test_report_found_in_cli_output(self):
        self.assertIn("heap-use-after-free", harness.sanitizer_report(self.ASAN))
        self.assertIsNone(harness.sanitizer_report("shutdown complete\n"))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", self.headers.get("X-Request-Id", "none"))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class HttpHelpersTest(unittest.TestCase):
    def test_request_and_raw_against_stub(self):
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        t = threading.Thread(target=httpd.serve_forever, daemon=True)
        t.start()
        try:
            s = harness.Server.__new__(harness.Server)  # only the HTTP helpers are used
            s.port = httpd.server_address[1]
            r = s.get("/x")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json(), {"ok": True})
            self.assertEqual(r.header("x-request-id"), r.request_id)
            raw = s.raw(b"GET /y HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc\r\n\r\n")
            self.assertEqual((raw.status, raw.header("X-Request-Id"), raw.json()), (200, "abc", {"ok": True}))
            c = s.client()
            self.assertEqual([c.request("GET", "/z").status for _ in range(3)], [200] * 3)
            c.close()
        finally:
            httpd.shutdown()
            httpd.server_close()

    def test_parse_chunked(self):
        r = parse_raw_response(b"HTTP/1.1 413 Payload Too Large\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        self.assertEqual((r.status, r.body), (413, b"abcde"))
        self.assertIsNone(parse_raw_response(b"garbage"))

    def test_toml(self):
        text = to_toml({"server": {"listen_port": 8080, "listen_address": "127.0.0.1"},
                        "audit": {"enabled": True},
                        "database": {"url": "postgresql://x", "critical": {"pool_size": 2}}})
        self.assertIn('listen_address = "127.0.0.1"', text)
        self.assertIn("enabled = true", text)
        self.assertIn("[database.critical]\npool_size = 2", text)
        try:
            import tomllib
        except ImportError:  # pragma: no cover
            return
        self.assertEqual(tomllib.loads(text)["database"]["critical"]["pool_size"], 2)


if __name__ == "__main__":
    unittest.main()
