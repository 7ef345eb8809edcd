"""Sessions: login shapes per role, wrong passwords, account lockout (423 naming the
unlock time, lifted after lockout_s), per-client throttling (429 + Retry-After), and
the audit records of all of it."""

import time
import unittest

from harness import ContinuumTestCase


class LoginTest(ContinuumTestCase):
    SERVER_OVERRIDES = {"auth": {"max_login_failures": 3, "lockout_s": 4}}

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
        wrong = s.login_response("patient-5", "not-the-password")
        self.assertOperationOutcome(wrong, 401)
        unknown = s.login_response("no-such-user-e2e", "not-the-password")
        self.assertOperationOutcome(unknown, 401)
        self.assertEqual(wrong.json()["issue"][0].get("diagnostics"),
                         unknown.json()["issue"][0].get("diagnostics"),
                         "the message must not reveal whether the account exists")
        rows = self.cluster.wait_audit(wrong.request_id)
        self.assertTrue(any(a["action"] == "login" and a["outcome"] != "success" for a in rows), rows)
        self.cluster.wait_audit(unknown.request_id)

    def test_lockout_after_max_failures(self):
        s, c = self.server, self.cluster
        user = "patient-7"
        for i in range(2):
            r = s.login_response(user, f"wrong-{i}")
            self.assertOperationOutcome(r, 401)
        # the failure that reaches max_login_failures may already answer 423
        self.assertOperationOutcome(s.login_response(user, "wrong-2"), (401, 423))
        r = s.login_response(user)  # the right password, but the account is locked now
        oo = self.assertOperationOutcome(r, 423)
        diag = oo["issue"][0].get("diagnostics", "")
        self.assertRegex(diag, r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", f"423 must name the unlock time: {diag!r}")
        self.assertTrue(c.scalar("SELECT locked_until > now() AS locked FROM account WHERE username = :'u'", u=user))
        rows = c.wait_audit(r.request_id)
        self.assertTrue(any(a["outcome"] != "success" for a in rows), rows)
        # other accounts are not affected
        self.assertEqual(s.login_response("patient-8").status, 200)
        # the lock lifts after lockout_s (4 s)
        time.sleep(4.5)
        r = s.login_response(user)
        self.assertEqual(r.status, 200, r)

    def test_throttle_per_client(self):
        # A node of its own: the throttle is per client address and in memory.
        node = self.cluster.add_server("node-throttle")
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


if __name__ == "__main__":
    unittest.main()
