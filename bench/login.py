#!/usr/bin/env python3
"""Logs the benchmark's users in; shared by bench/run and bench/writes.

  bench/login.py BASE_URL < users > tokens

Each input line is "username|patient_id" or "username|patient_id|region"; each output
line is "patient_id token" (plus " region" when given: bench/wrk_fhir.lua sends it as
X-Continuum-Region, so the edge places the session in that region). The password is
the seed's. A login answered 429 or 503 (throttled, busy: a bulkhead doing its job) is
retried after its Retry-After, up to 60 times; any other failure stops the benchmark."""

from __future__ import annotations

import concurrent.futures
import json
import sys
import time
import urllib.error
import urllib.request


def login(base: str, username: str, region: str | None) -> str:
    body = json.dumps({"username": username, "password": "continuum-demo"}).encode()
    headers = {"Content-Type": "application/json"}
    if region:
        headers["X-Continuum-Region"] = region
    for _ in range(60):
        req = urllib.request.Request(f"{base}/api/v1/session", data=body, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.load(r)["access_token"]
        except urllib.error.HTTPError as e:
            if e.code not in (429, 503):
                raise SystemExit(f"bench: login {username}: HTTP {e.code} {e.read()[:200]!r}")
            time.sleep(min(5.0, float(e.headers.get("Retry-After") or 1)))
    raise SystemExit(f"bench: login {username}: still throttled after 60 tries")


def main() -> None:
    base = sys.argv[1]
    users = []
    for line in sys.stdin:
        fields = line.strip().split("|")
        if len(fields) < 2:
            continue
        users.append((fields[0], fields[1], fields[2] if len(fields) > 2 and fields[2] else None))

    def one(user: tuple[str, str, str | None]) -> str:
        name, pid, region = user
        return " ".join([pid, login(base, name, region)] + ([region] if region else []))

    # Two at a time: a login is mostly the server's Argon2id hash, one per core here.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for out in pool.map(one, users):
            print(out, flush=True)


if __name__ == "__main__":
    main()
