"""Versioned releases on a device: install a verified bundle, health-check it, switch atomically, roll back.

Runs on the device (the bundle's ``runner.py deploy|rollback|status``) or, for a profile without ``ssh:``, in this
process on a folder (a mounted SD card). A deploy folder holds::

    trusted.pub                the public key pinned at the first install; every later bundle must verify with it
    releases/<version>/        immutable (read-only) verified bundles
    current -> releases/<v>    the release that runs; switched by one rename(2) of a new link over it
    previous -> releases/<v>   the rollback target (never deleted)
    health/<version>.json      each release's health-check results
    deploy-log.jsonl           append-only: one line per install, check, switch, prune and rollback
    .lock                      flock: one deploy or rollback at a time

A SIGKILL at any step leaves ``current`` on a whole, verified release: a release is copied to a temp folder and
renamed into ``releases/`` only once complete, and ``current`` changes by a single rename. Standard library,
``cryptography`` (signatures) and numpy + the runtime (the health check) only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import time

from edgegen.errors import EdgegenError

VERSION = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,9}){0,5}$")
WHO = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")
LOG = "deploy-log.jsonl"
TRUSTED = "trusted.pub"
KEEP = 3


class ReleaseError(EdgegenError):
    """A deploy, rollback or status that cannot be done: one line naming the file or release."""


def version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def check_version(v: object, where: str) -> str:
    if not isinstance(v, str) or not VERSION.match(v):
        raise ReleaseError(f"{where}: version {v!r} is not numbers separated by dots (e.g. 1.2.0)")
    return v


def step_point(name: str) -> None:
    """A named point of a deploy; the tests SIGKILL the process here (EDGEGEN_DEPLOY_KILL_AT) to prove each is safe."""
    if os.environ.get("EDGEGEN_DEPLOY_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


class DeployDir:
    def __init__(self, root: str):
        self.root = os.path.abspath(os.path.expanduser(root))
        self.releases = os.path.join(self.root, "releases")

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def log(self, event: str, **fields) -> None:
        """Append one JSON line (a single write on an O_APPEND file, flushed to disk)."""
        line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields})
        fd = os.open(self.path(LOG), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def events(self) -> list[dict]:
        try:
            with open(self.path(LOG), encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a power loss: the others still tell the story
        return out

    def link(self, name: str) -> str | None:
        """The version ``current`` / ``previous`` points to, or None."""
        p = self.path(name)
        if not os.path.islink(p):
            return None
        target = os.readlink(p)
        v = os.path.basename(target.rstrip("/"))
        if target != f"releases/{v}" or not VERSION.match(v) or not os.path.isdir(os.path.join(self.releases, v)):
            return None
        return v

    def point(self, name: str, version: str) -> None:
        """Make ``name`` point to ``releases/version`` with one rename(2) of a new link over the old one."""
        tmp = self.path(f".{name}.{os.getpid()}.tmp")
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(f"releases/{version}", tmp)
        os.replace(tmp, self.path(name))
        fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def versions(self) -> list[str]:
        if not os.path.isdir(self.releases):
            return []
        return sorted((v for v in os.listdir(self.releases) if VERSION.match(v)), key=version_key)

    def lock(self):
        import fcntl

        os.makedirs(self.root, exist_ok=True)
        fh = open(self.path(".lock"), "a")
        fcntl.flock(fh, fcntl.LOCK_EX)  # a second deploy waits here; the kernel frees it if this one is killed
        return fh

    def clean_stale(self) -> None:
        """Remove what a killed deploy left: temp release folders and links (never a release or a link in use)."""
        for d in (self.releases, self.root):
            if os.path.isdir(d):
                for n in os.listdir(d):
                    if n.startswith(".") and n.endswith(".tmp"):
                        remove_tree(os.path.join(d, n))


def remove_tree(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
        return
    for d, _, _ in os.walk(path):
        os.chmod(d, stat.S_IRWXU)  # a release is read-only: its folders must be writable to be emptied
    shutil.rmtree(path, ignore_errors=True)


def freeze(path: str) -> None:
    walked = list(os.walk(path))
    for d, _, files in walked:
        for f in files:
            os.chmod(os.path.join(d, f), 0o444)
    for d, _, _ in sorted(walked, key=lambda t: -len(t[0])):  # the deepest first: a read-only folder stays walkable
        os.chmod(d, 0o555)


def verify_release(folder: str, trusted_pem: bytes | None, where_key: str) -> dict:
    """The bundle's manifest check, and its signature under the trusted key when there is one; the manifest."""
    from edgegen.bundle_check import BundleError, verify_bundle

    if trusted_pem is not None:
        from edgegen.signing import SignatureError, verify_signed_bundle

        try:
            verify_signed_bundle(folder, trusted_pem, where_key)
        except SignatureError as e:
            raise ReleaseError(str(e)) from None
    try:
        return verify_bundle(folder)
    except BundleError as e:
        raise ReleaseError(str(e)) from None


def trusted_key(dd: DeployDir, incoming: str, trust_pem: bytes | None, force: bool) -> tuple[bytes | None, bool]:
    """(the key a bundle must verify with, whether to pin it once the bundle verified): the pinned key, or
    ``trust_pem`` at the first install (or replacing the pinned one with ``force``); None for an unsigned, forced
    bundle."""
    from edgegen.signing import is_signed, key_id

    pinned = dd.path(TRUSTED)
    if not is_signed(incoming):
        if not force:
            raise ReleaseError(
                f"{incoming}: the bundle is not signed (edgegen bundle … --sign KEY; --force to take it)"
            )
        return None, False
    if os.path.exists(pinned):
        with open(pinned, "rb") as fh:
            pem = fh.read()
        if trust_pem is None or trust_pem.strip() == pem.strip():
            return pem, False
        if not force:
            raise ReleaseError(
                f"{pinned}: the device trusts key {key_id(pem)}, not {key_id(trust_pem)} (--force to replace it)"
            )
    if trust_pem is None:
        raise ReleaseError(f"{pinned}: no key is pinned on this device yet: give the public key to trust (--trust)")
    key_id(trust_pem)  # a PEM Ed25519 key, or a one-line error
    return trust_pem, True


def pin_key(dd: DeployDir, pem: bytes) -> None:
    from edgegen.io import atomic_write_bytes
    from edgegen.signing import key_id

    atomic_write_bytes(dd.path(TRUSTED), pem)
    dd.log("key-pinned", key=key_id(pem))
