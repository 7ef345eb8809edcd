"""The web app's bundle served by a node ([web] root, src/http/static_site.hpp): caching
and security headers, the single-page app's fallback, HEAD, ETags, and no path traversal
(dot segments, encoded dots, absolute paths, hidden files, symbolic links). Static files
carry no PHI: they are not audited; the API's PHI answers are `no-store`. A throwaway bundle stands in for web/dist, so this
module needs no npm build (tests/e2e/test_web.py drives the real one in a browser)."""

from __future__ import annotations

import http.client
import os
import socket
import time

from harness import ContinuumTestCase

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
INDEX = b"<!doctype html><html lang=en><title>Continuum</title><script type=module src=/assets/app-1a2b.js></script>"


class WebStaticTest(ContinuumTestCase):
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        root = cls.cluster.dir / "web-dist"
        (root / "assets").mkdir(parents=True)
        (root / "index.html").write_bytes(INDEX)
        (root / "assets" / "app-1a2b.js").write_bytes(b"export const x = 1;\n")
        (root / "assets" / "app-1a2b.css").write_bytes(b"body{margin:0}\n")
        (root / "favicon.svg").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
        (root / ".env").write_bytes(b"SECRET=1\n")
        (cls.cluster.dir / "outside.txt").write_bytes(b"not part of the site\n")
        os.symlink(cls.cluster.dir / "outside.txt", root / "linked.txt")
        cls.server = cls.cluster.add_server("node-1", {"web": {"root": str(root)}})

    def assertSecurityHeaders(self, r):
        self.assertEqual(r.header("Content-Security-Policy"), CSP, r)
        self.assertEqual(r.header("X-Frame-Options"), "DENY", r)
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff", r)

    def test_index_assets_and_headers(self):
        r = self.server.get("/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, INDEX)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        self.assertEqual(r.header("Cache-Control"), "no-store")
        self.assertSecurityHeaders(r)
        r = self.server.get("/assets/app-1a2b.js")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "text/javascript; charset=utf-8")
        self.assertEqual(r.header("Cache-Control"), "public, max-age=31536000, immutable")
        self.assertSecurityHeaders(r)
        r = self.server.get("/assets/app-1a2b.css")
        self.assertEqual(r.header("Content-Type"), "text/css; charset=utf-8")
        r = self.server.get("/favicon.svg")
        self.assertEqual(r.header("Content-Type"), "image/svg+xml")
        self.assertEqual(r.header("Cache-Control"), "no-cache")
        etag = r.header("ETag")
        self.assertTrue(etag)
        again = self.server.get("/favicon.svg", headers={"If-None-Match": etag})
        self.assertEqual(again.status, 304, again)
        self.assertEqual(again.body, b"")

    def test_head_has_the_length_and_no_body(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            conn.request("HEAD", "/assets/app-1a2b.js")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.read(), b"")
            self.assertEqual(int(r.getheader("Content-Length")), len(b"export const x = 1;\n"))
            # the connection is still usable (stray body bytes: test_head_of_an_error_has_no_body,
            # on a raw socket)
            conn.request("GET", "/assets/app-1a2b.js")
            r = conn.getresponse()
            self.assertEqual(r.read(), b"export const x = 1;\n")
        finally:
            conn.close()

    def test_head_of_an_error_has_no_body(self):
        """A HEAD that gets an error (405 on a GET-only route, 404 on an unknown API path)
        gets its head only, with the GET's length: the bytes after it are the next
        response on the connection. (A raw socket: http.client drops its read buffer
        after a HEAD, stray body bytes with it, so it cannot tell.)"""
        for path, status in (("/healthz", 405), ("/api/v1/nothing", 404),
                             ("/fhir/R4/Nothing", 404), ("/api/v1/session", 405),
                             ("/assets/app-1a2b.js", 200)):
            with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as s:
                s.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"
                          "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                data = b""
                deadline = time.monotonic() + 10
                while b'{"status":"ok"}' not in data and time.monotonic() < deadline:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(f"HTTP/1.1 {status} ".encode()), (path, data))
            length = [line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")]
            self.assertEqual(len(length), 1, (path, head))
            self.assertGreater(int(length[0]), 0, path)
            self.assertTrue(rest.startswith(b"HTTP/1.1 200 OK\r\n"), (path, data))
            self.assertTrue(rest.endswith(b'\r\n\r\n{"status":"ok"}'), (path, data))

    def test_app_paths_fall_back_to_index_api_paths_do_not(self):
        for path in ("/appointments", "/bills", "/provider/patients/12"):
            r = self.server.get(path)
            self.assertEqual((r.status, r.body), (200, INDEX), path)
            self.assertEqual(r.header("Cache-Control"), "no-store")
        for path in ("/api/v1/nothing", "/fhir/R4/Nothing", "/healthz/x", "/metrics/x"):
            r = self.server.get(path)
            self.assertOperationOutcome(r, 404)
            self.assertNotEqual(r.body, INDEX, path)
        # the API is untouched
        self.assertEqual(self.server.get("/healthz").json(), {"status": "ok"})
        self.assertEqual(self.server.get("/api/v1/articles").status, 200)
        # only GET and HEAD
        self.assertIn(self.server.request("POST", "/", body=b"{}").status, (404, 405))

    def test_no_path_traversal(self):
        for path in ("/../outside.txt", "/assets/../../outside.txt", "/%2e%2e/outside.txt",
                     "/assets/%2e%2e/%2e%2e/outside.txt", "/%2E%2E%2Foutside.txt",
                     "//etc/passwd", "/%2Fetc%2Fpasswd", "/assets/%2Fetc%2Fpasswd",
                     "/.env", "/%2eenv", "/linked.txt", "/assets/missing-0000.js", "/nothing.js",
                     "/assets/", "/a%5c..%5coutside.txt", "/a%00.js"):
            r = self.server.get(path)
            self.assertEqual(r.status, 404, f"{path}: {r!r}")
            self.assertNotIn(b"not part of the site", r.body, path)
            self.assertNotIn(b"SECRET", r.body, path)
            self.assertNotIn(b"root:", r.body, path)
            self.assertEqual(r.header("X-Content-Type-Options"), "nosniff", path)
        # the same bytes on the wire, unnormalised by any client library
        raw = self.server.raw(b"GET /../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIsNotNone(raw)
        self.assertIn(raw.status, (400, 404), raw)
        self.assertNotIn(b"root:", raw.body)

    def test_static_requests_are_not_audited(self):
        r = self.server.get("/assets/app-1a2b.js")
        self.assertEqual(r.status, 200)
        # a PHI request after it: once its record is in the journal, so would the
        # static one's be, had it been written
        tok = self.token("demo-patient")
        phi = self.server.get("/fhir/R4/Patient/1", token=tok)
        self.assertEqual(phi.status, 200, phi)
        # PHI from the API is never cached either (a session's routes: no-store)
        self.assertEqual(phi.header("Cache-Control"), "no-store", phi)
        denied = self.server.get("/fhir/R4/Patient/2", token=tok)
        self.assertEqual((denied.status, denied.header("Cache-Control")), (403, "no-store"))
        self.assertEqual(self.server.get("/api/v1/articles").header("Cache-Control"),
                         "public, max-age=60")
        journal = b"".join(p.read_bytes() for p in self.server.journal_files())
        self.assertIn(phi.request_id.encode(), journal)
        self.assertNotIn(r.request_id.encode(), journal)


class WebDisabledTest(ContinuumTestCase):
    SERVER_OVERRIDES = {"web": {"enabled": False}}

    def test_no_app_without_a_bundle(self):
        r = self.server.get("/")
        self.assertOperationOutcome(r, 404)
        self.assertIsNone(r.header("Content-Security-Policy"))
