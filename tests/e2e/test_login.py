"""Sessions: login shapes per role, wrong passwords, throttling per client (an IPv6
client by its /64) and per client and account, account lockout (423 naming the unlock
time, only to the right password, lifted after lockout_s, passed by a second factor),
the second factor (same answer for a missing code, no replay, enrolment), logout
reaching every node even when its commit is slow, and the audit records of all of it."""

import base64
import hashlib
import hmac
import struct
import subprocess
import time
import unittest
from urllib.parse import parse_qs, urlsplit

from harness import PSQL, ContinuumTestCase, wait_until

WRONG = "not-the-password"


def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238 code (SHA-1, 30 s, 6 digits) of a base32 secret at unix time `at`."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", int((time.time() if at is None else at) // 30)),
                   hashlib.sha1).digest()
    off = mac[19] & 15
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)


SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


class LoginTest(ContinuumTestCase):
    SERVER_OVERRIDES = {"server": {"trusted_proxies": ["127.0.0.1"]},
                        "auth": {"max_login_failures": 3, "account_lockout_failures": 6,
                                 "lockout_s": 4}}

    def login_from(self, user, password=None, address=None, code=None, server=None):
        body = {"username": user, "password": password or "continuum-demo"}
        if code is not None:
            body["totp"] = code
        headers = {"X-Forwarded-For": address} if address else None
        return (server or self.server).post_json("/api/v1/session", body, headers=headers)

    def diagnostics(self, r):
        return r.json()["issue"][0].get("diagnostics")

    def test_login_per_role(self):
        s = self.server
        cases = {"demo-patient": ("patient", "1"), "demo-provider": ("practitioner", "1"),
                 "patient-2": ("patient", "2")}
        for user, (field, value) in cases.items():
            with self.subTest(user=user):
                r = s.login_response(user)
                self.assertEqual(r.status, 200, r)
                body = r.json()
                self.assertEqual(body.get("token_type"), "Bearer")
                self.assertTrue(body.get("access_token"))
                self.assertIsInstance(body.get("expires_in"), int)
                self.assertEqual(body.get(field), value)
                self.assertNotIn("password", r.text.lower())
                rows = self.cluster.wait_audit(r.request_id)
                self.assertTrue(any(a["action"] == "login" and a["outcome"] == "success" and a["actor"] == user
                                    for a in rows), rows)
        r = s.login_response("demo-auditor")
        self.assertEqual(r.status, 200, r)

    def test_wrong_password_and_unknown_user_look_the_same(self):
        s = self.server
        wrong = s.login_response("patient-5", WRONG)
        self.assertOperationOutcome(wrong, 401)
        unknown = s.login_response("no-such-user-e2e", WRONG)
        self.assertOperationOutcome(unknown, 401)
        self.assertEqual(self.diagnostics(wrong), self.diagnostics(unknown),
                         "the message must not reveal whether the account exists")
        rows = self.cluster.wait_audit(wrong.request_id)
        self.assertTrue(any(a["action"] == "login" and a["outcome"] != "success" for a in rows), rows)
        self.cluster.wait_audit(unknown.request_id)

    # -- throttling and lockout --------------------------------------------------------

    def test_a_guesser_is_stopped_without_locking_the_owner_out(self):
        # One client guessing at a provider's password is throttled on that account
        # after max_login_failures; the account is not locked for its owner.
        user = "provider-3"
        for i in range(3):
            self.assertOperationOutcome(self.login_from(user, f"{WRONG}-{i}", "198.51.100.7"), 401)
        r = self.login_from(user, WRONG, "198.51.100.7")
        self.assertOperationOutcome(r, 429)
        self.assertTrue((r.header("Retry-After") or "").isdigit(), r)
        # even the right password from the guesser's address waits
        self.assertOperationOutcome(self.login_from(user, None, "198.51.100.7"), 429)
        # the owner, elsewhere, logs in
        r = self.login_from(user, None, "203.0.113.9")
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(self.cluster.scalar(
            "SELECT locked_until FROM account WHERE username = :'u'", u=user))
        self.cluster.wait_audit(r.request_id)

    def test_lockout_after_failures_from_many_clients(self):
        s, c = self.server, self.cluster
        user = "patient-7"
        # account_lockout_failures = 6, from 3 addresses (2 each, under the per-client limit)
        for i in range(6):
            r = self.login_from(user, f"{WRONG}-{i}", f"192.0.2.{10 + i // 2}")
            self.assertOperationOutcome(r, 401)
        self.assertTrue(c.scalar("SELECT locked_until > now() AS locked FROM account WHERE username = :'u'", u=user))
        # a wrong password learns nothing of the lock
        wrong = self.login_from(user, WRONG, "192.0.2.50")
        self.assertOperationOutcome(wrong, 401)
        self.assertEqual(self.diagnostics(wrong), self.diagnostics(self.login_from("patient-8", WRONG)))
        r = s.login_response(user)  # the right password, but the account is locked now
        oo = self.assertOperationOutcome(r, 423)
        diag = oo["issue"][0].get("diagnostics", "")
        self.assertRegex(diag, r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", f"423 must name the unlock time: {diag!r}")
        rows = c.wait_audit(r.request_id)
        self.assertTrue(any(a["outcome"] != "success" for a in rows), rows)
        # other accounts are not affected
        self.assertEqual(s.login_response("patient-8").status, 200)
        # the lock lifts after lockout_s (4 s)
        time.sleep(4.5)
        r = s.login_response(user)
        self.assertEqual(r.status, 200, r)

    def test_a_locked_account_is_revealed_only_to_the_right_password(self):
        user = "patient-11"
        self.cluster.sql("UPDATE account SET failed_attempts = 6, locked_until = now() + "
                         "interval '1 minute' WHERE username = :'u'", u=user)
        wrong = self.login_from(user, WRONG, "192.0.2.77")
        self.assertOperationOutcome(wrong, 401)
        self.assertEqual(self.diagnostics(wrong),
                         self.diagnostics(self.login_from("patient-12", WRONG, "192.0.2.77")))
        self.assertOperationOutcome(self.login_from(user, None, "192.0.2.77"), 423)
        # failures during the lock do not extend it
        until = self.cluster.scalar("SELECT locked_until FROM account WHERE username = :'u'", u=user)
        self.login_from(user, WRONG, "192.0.2.78")
        self.assertEqual(until, self.cluster.scalar(
            "SELECT locked_until FROM account WHERE username = :'u'", u=user))

    def test_ipv6_clients_are_throttled_by_their_64(self):
        node = self.cluster.add_server("node-v6", {"server": {"trusted_proxies": ["127.0.0.1"]},
                                                   "auth": {"login_burst": 5, "login_rate_per_minute": 6}})
        try:
            statuses = []
            for i in range(1, 12):
                r = self.login_from(f"no-such-user-v6-{i}", WRONG, f"2001:db8:1:2::{i:x}", server=node)
                statuses.append(r.status)
                if r.status == 429:
                    break
            self.assertEqual(statuses[-1], 429, f"addresses of one /64 were never throttled: {statuses}")
            self.assertLessEqual(len(statuses), 6, statuses)
            # another /64 is another client
            r = self.login_from("no-such-user-v6-x", WRONG, "2001:db8:1:3::1", server=node)
            self.assertEqual(r.status, 401, r)
        finally:
            node.stop()

    def test_throttle_per_client(self):
        # A node of its own: the throttle is per client address and in memory.
        # A slow refill, so that a slow machine cannot refill the bucket between attempts.
        node = self.cluster.add_server("node-throttle", {"auth": {"login_burst": 20,
                                                                  "login_rate_per_minute": 6}})
        try:
            statuses, throttled = [], None
            for i in range(60):
                r = node.login_response(f"no-such-user-{i}", "guess", retry_throttled=False)
                statuses.append(r.status)
                if r.status == 429:
                    throttled = r
                    break
                self.assertEqual(r.status, 401, r)
            self.assertIsNotNone(throttled, f"no 429 after {len(statuses)} attempts")
            self.assertOperationOutcome(throttled, 429)
            retry_after = throttled.header("Retry-After")
            self.assertTrue(retry_after and retry_after.isdigit() and int(retry_after) >= 1,
                            f"Retry-After: {retry_after!r}")
            # the right password does not get around the throttle either
            r = node.login_response("demo-patient", retry_throttled=False)
            self.assertEqual(r.status, 429, r)
            self.cluster.wait_audit(r.request_id)
        finally:
            node.stop()

    # -- second factor -----------------------------------------------------------------

    def test_totp_missing_code_answers_like_a_wrong_password_and_counts(self):
        user = "provider-4"
        self.cluster.sql("UPDATE account SET totp_secret = :'s' WHERE username = :'u'", s=SECRET, u=user)
        failed = lambda: self.cluster.scalar("SELECT failed_attempts FROM account WHERE username = :'u'", u=user)
        before = failed()
        no_code = self.login_from(user, None, "192.0.2.90")
        wrong = self.login_from(user, WRONG, "192.0.2.91")
        self.assertOperationOutcome(no_code, 401)
        self.assertOperationOutcome(wrong, 401)
        self.assertEqual(self.diagnostics(no_code), self.diagnostics(wrong),
                         "a right password without a code must look like a wrong password")
        self.assertEqual(failed(), before + 2, "the missing code must count as a failure")
        rows = self.cluster.wait_audit(no_code.request_id)
        self.assertTrue(any(a["action"] == "login" and a["outcome"] == "failure" for a in rows), rows)
        # with the code it works, and a success clears the count
        r = self.login_from(user, None, "192.0.2.90", code=totp(SECRET))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(failed(), 0)

    def test_totp_code_cannot_be_replayed(self):
        user = "provider-5"
        self.cluster.sql("UPDATE account SET totp_secret = :'s' WHERE username = :'u'", s=SECRET, u=user)
        code = totp(SECRET)
        first = self.login_from(user, None, "192.0.2.95", code=code)
        self.assertEqual(first.status, 200, first)
        again = self.login_from(user, None, "192.0.2.96", code=code)
        self.assertOperationOutcome(again, 401)
        self.assertEqual(self.diagnostics(again), self.diagnostics(self.login_from(user, WRONG, "192.0.2.97")))
        rows = self.cluster.wait_audit(again.request_id)
        self.assertTrue(any("replay" in (a.get("detail") or "") for a in rows), rows)

    def test_totp_passes_an_account_lock(self):
        # Nobody can lock a provider with a second factor out: the right password and
        # the right code pass the lock.
        user = "provider-6"
        self.cluster.sql("UPDATE account SET totp_secret = :'s', failed_attempts = 6, locked_until = "
                         "now() + interval '1 minute' WHERE username = :'u'", s=SECRET, u=user)
        self.assertOperationOutcome(self.login_from(user, None, "192.0.2.99"), 401)  # no code: alike
        r = self.login_from(user, None, "192.0.2.99", code=totp(SECRET))
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(self.cluster.scalar("SELECT locked_until FROM account WHERE username = :'u'", u=user))

    def test_totp_enrolment(self):
        s, user = self.server, "provider-7"
        token = s.login(user)
        path = "/api/v1/session/totp"
        self.assertOperationOutcome(s.post_json(path, {}, token=token), 400)
        self.assertOperationOutcome(s.post_json(path, {"password": WRONG}, token=token), 403)
        self.assertOperationOutcome(s.post_json(path, {"password": "x"}), 401)  # no session
        r = s.post_json(path, {"password": "continuum-demo"}, token=token)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.header("Cache-Control"), "no-store")
        uri = urlsplit(r.json()["otpauth_uri"])
        self.assertEqual((uri.scheme, uri.netloc), ("otpauth", "totp"), uri)
        self.assertIn(user, uri.path)
        q = parse_qs(uri.query)
        secret = q["secret"][0]
        self.assertEqual(q["issuer"], ["Continuum"])
        self.assertEqual(secret, r.json()["secret"])
        self.cluster.wait_audit(r.request_id)
        # not enforced before it is confirmed
        self.assertEqual(self.login_from(user, None, "192.0.2.120").status, 200)
        self.assertIsNone(self.cluster.scalar("SELECT totp_secret FROM account WHERE username = :'u'", u=user))
        confirm = "/api/v1/session/totp/confirm"
        bad = "000000" if totp(secret) != "000000" else "111111"
        self.assertOperationOutcome(s.post_json(confirm, {"code": bad}, token=token), 400)
        r = s.post_json(confirm, {"code": totp(secret)}, token=token)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.cluster.scalar("SELECT totp_secret FROM account WHERE username = :'u'", u=user),
                         secret)
        # enforced now; the confirming code is spent, the next step's code works
        self.assertOperationOutcome(self.login_from(user, None, "192.0.2.121"), 401)
        r = self.login_from(user, None, "192.0.2.122", code=totp(secret, time.time() + 30))
        self.assertEqual(r.status, 200, r)
        # an enabled factor is not replaced through the API
        self.assertOperationOutcome(s.post_json(path, {"password": "continuum-demo"}, token=token), 409)


class LogoutReachesEveryNodeTest(ContinuumTestCase):
    """A logout whose commit comes long after its transaction began (here a lock held
    for 8 s; in a failover the critical deadline is 15 s) still reaches other nodes."""
    START_SERVER = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.node1 = cls.cluster.add_server("node-1", {"database": {"critical": {"deadline_ms": 15000}}})
        cls.node2 = cls.cluster.add_server("node-2")

    def test_slow_logout_commit_reaches_another_node(self):
        user, pid = "patient-9", "9"
        token = self.node1.login(user)
        self.assertEqual(self.node2.fhir(f"Patient/{pid}", token).status, 200)
        sid = self.cluster.scalar("SELECT s.id FROM session s JOIN account a ON a.id = s.account_id "
                                  "WHERE a.username = :'u' AND s.revoked_at IS NULL "
                                  "ORDER BY s.created_at DESC LIMIT 1", u=user)
        holder = subprocess.Popen([PSQL, self.cluster.pg.url, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                   "-v", f"sid={sid}"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  text=True)
        try:
            holder.stdin.write("BEGIN;\nSELECT 1 FROM session WHERE id = :'sid' FOR UPDATE;\n"
                               "SELECT pg_sleep(8);\nCOMMIT;\n")
            holder.stdin.close()
            wait_until(lambda: self.cluster.scalar(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event = 'PgSleep'") > 0,
                timeout=10, message="the lock holder sleeping")
            t0 = time.monotonic()
            r = self.node1.logout(token)
            took = time.monotonic() - t0
        finally:
            holder.wait(30)
        self.assertEqual(r.status, 204, r)
        self.assertGreater(took, 5.0, "the logout's commit was not held back past the old 5 s overlap")
        print(f"\n[logout] revoking transaction committed {took:.1f} s after it began")
        self.assertEqual(self.node1.fhir(f"Patient/{pid}", token).status, 401)
        # node-2 polls every second: give it a few polls
        deadline = time.monotonic() + 5
        status = None
        while time.monotonic() < deadline:
            status = self.node2.fhir(f"Patient/{pid}", token).status
            if status == 401:
                break
            time.sleep(0.3)
        self.assertEqual(status, 401, "node-2 still accepts a token that was logged out on node-1")


if __name__ == "__main__":
    unittest.main()
