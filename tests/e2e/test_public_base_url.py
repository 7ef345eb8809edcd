"""Links the portal hands out (Location headers, a search Bundle's self/next links and
fullUrl, the CapabilityStatement's url) are built on the configured
[server] public_base_url, never on the request's Host or X-Forwarded-Proto: a client
that sends `Host: evil.example` must not get links that send the next request (and its
token) to evil.example. Without the key the base is the listen address (issue 10,
smaller defects)."""

from __future__ import annotations

import uuid

from harness import BINARY, FHIR_JSON, ContinuumTestCase, note_body, run

PUBLIC = "https://portal.example:8443"
HOSTILE = {"Host": "evil.example", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"}


class PublicBaseUrlTest(ContinuumTestCase):
    START_SERVER = False

    def links(self, server, base):
        """Every link of one paged search, one created note and the capability statement,
        all asked for with a hostile Host."""
        tok = self.token("demo-patient", server)
        r = server.get("/fhir/R4/Slot?_count=1", token=tok, headers=HOSTILE)
        self.assertEqual(r.status, 200, r)
        b = r.json()
        urls = [l["url"] for l in b["link"]] + [e["fullUrl"] for e in b["entry"]]
        self.assertIn("next", [l["relation"] for l in b["link"]], b["link"])
        r = server.post_json("/fhir/R4/DocumentReference", note_body("1", "base url " + uuid.uuid4().hex),
                             token=self.token("demo-provider", server), content_type=FHIR_JSON,
                             headers=HOSTILE)
        self.assertEqual(r.status, 201, r)
        urls.append(r.header("Location"))
        r = server.get("/fhir/R4/metadata", headers=HOSTILE)
        self.assertEqual(r.status, 200, r)
        urls.append(r.json()["implementation"]["url"])
        for u in urls:
            self.assertFalse("evil.example" in (u or ""), f"a link follows the Host header: {u}")
            self.assertTrue((u or "").startswith(base + "/fhir/R4/") or u == base + "/fhir/R4",
                            f"{u} is not on {base}")
        return urls

    def test_links_use_the_configured_base_not_host(self):
        server = self.cluster.add_server("node-public", {"server": {"public_base_url": PUBLIC + "/"}})
        try:
            self.links(server, PUBLIC)
        finally:
            server.stop()

    def test_default_base_is_the_listen_address(self):
        server = self.cluster.add_server("node-default")
        try:
            self.links(server, f"http://127.0.0.1:{server.port}")
        finally:
            server.stop()

    def test_bad_base_url_is_refused_at_start(self):
        for bad in ("portal.example", "https://portal.example/?a=1", "ftp://portal.example"):
            with self.subTest(bad):
                cfg = self.cluster.dir / "bad-base-url.toml"
                cfg.write_text(f'[server]\nlisten_port = 1\npublic_base_url = "{bad}"\n')
                cp = run([BINARY, "serve", "--config", cfg], timeout=20)
                self.assertNotEqual(cp.returncode, 0)
                self.assertIn("server.public_base_url: must be an absolute http", cp.stdout + cp.stderr)
