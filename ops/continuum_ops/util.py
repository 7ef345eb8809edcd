"""Small shared helpers: logging, rendering templates, HTTP probes, waiting."""

from __future__ import annotations

import json
import os
import ssl
import string
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


class ClusterError(Exception):
    """A failure with a sentence for the operator; the CLI prints it and exits 1."""


def log(msg: str) -> None:
    print(f"[cluster {time.strftime('%H:%M:%S', time.gmtime())}] {msg}", file=sys.stderr, flush=True)


def render_text(template: str, values: dict[str, object]) -> str:
    """string.Template substitution; a placeholder without a value is an error naming it."""
    try:
        return string.Template(template).substitute({k: str(v) for k, v in values.items()})
    except KeyError as e:
        raise ClusterError(f"template needs a value for ${{{e.args[0]}}}") from None


def write_atomic(path: Path, text: str, mode: int | None = None, durable: bool = False) -> bool:
    """Writes via a temporary file and rename: a reader sees the old content or the new one,
    never a part. `durable`: also survives a power loss or kernel crash once this returns
    (fsync of the file before the rename, of the folder after it). Returns whether the
    content changed."""
    path = Path(path)
    try:
        if path.read_text() == text:
            if mode is not None:
                os.chmod(path, mode)
            return False
    except OSError:
        pass
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode if mode is not None else 0o644)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return True


def render(template: Path, dst: Path, values: dict[str, object], mode: int | None = None) -> bool:
    return write_atomic(dst, render_text(template.read_text(), values), mode)


_NO_VERIFY = ssl.create_default_context()
_NO_VERIFY.check_hostname = False
_NO_VERIFY.verify_mode = ssl.CERT_NONE


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes] | None:
    """(status, body), or None when nothing answered. https: certificate not checked (the
    demo edge is self-signed; this is a liveness probe, not a client)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=_NO_VERIFY) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception:  # noqa: BLE001 - refused, reset, timeout: nothing answered
        return None


def http_json(url: str, timeout: float = 2.0):
    r = http_get(url, timeout)
    if r is None:
        return None
    try:
        return json.loads(r[1])
    except ValueError:
        return None


def all_ok(urls: list[str], timeout: float = 2.0) -> list[bool]:
    """GETs in parallel; True where the answer was 200."""
    if not urls:
        return []
    with ThreadPoolExecutor(min(len(urls), 16)) as ex:
        return [r is not None and r[0] == 200 for r in ex.map(lambda u: http_get(u, timeout), urls)]


def wait_for(seconds: float, what: str, check, interval: float = 0.5) -> None:
    """Polls `check()` until true; `check` may raise ClusterError to stop at once."""
    end = time.monotonic() + seconds
    while not check():
        if time.monotonic() >= end:
            raise ClusterError(f"timed out after {seconds:.0f}s waiting for {what}")
        time.sleep(interval)


_KNOWS: dict[tuple[str, int, int, bytes], bool] = {}


def binary_knows(binary: Path, needle: bytes) -> bool:
    """Whether a release's binary contains needle (a configuration key it accepts: an
    older release refuses keys it does not know). Read once per binary file (path, size
    and mtime): the binary is ~150 MB and every node's config asks (0.4 s a read)."""
    st = binary.stat()
    key = (str(binary.resolve()), st.st_size, st.st_mtime_ns, needle)
    if key not in _KNOWS:
        _KNOWS[key] = needle in binary.read_bytes()
    return _KNOWS[key]
