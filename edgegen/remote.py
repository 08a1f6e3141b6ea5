"""Bundles (model + sidecar + tokenized inputs + the numpy-only runner) and
running them on a device with the system ssh/scp."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from edgegen.errors import RemoteError


def _run(cmd: list[str], timeout: int, what: str, host: str) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RemoteError(f"{what} on {host} timed out after {timeout} s") from None
    except FileNotFoundError:
        raise RemoteError(f"'{cmd[0]}' not found: install OpenSSH client") from None
    return r


def _safe_name(name: str) -> str:
    """A file or folder name for the device made of plain characters (a model's name is never shell text there)."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".-") or "bundle"


def _last_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else "(no output)"


class SSHDevice:
    """Copy a bundle to a device and run measurements there."""

    def __init__(self, profile):
        self.p = profile
        self.ssh = profile.ssh
        self.host = self.ssh.target()

    def check(self) -> None:
        r = _run(
            ["ssh", *self.ssh.base_args(), "--", self.host, "true"],
            self.ssh.connect_timeout_s + 20,
            "connection test",
            self.host,
        )
        if r.returncode != 0:
            raise RemoteError(f"cannot reach {self.host}: {_last_line(r.stderr)}")

    def push(self, bundle: Path, name: str, into: str | None = None) -> str:
        """Copy ``bundle`` to ``INTO/NAME`` on the device (default ``INTO``: the profile's ``remote_dir``)."""
        from edgegen.standalone import check_bundle

        check_bundle(bundle)  # never copy a bundle that differs from its manifest
        rdir = f"{(into or self.ssh.remote_dir).rstrip('/')}/{_safe_name(name)}"
        r = _run(
            [
                "ssh",
                *self.ssh.base_args(),
                "--",
                self.host,
                f"rm -rf {shlex.quote(rdir)} && mkdir -p {shlex.quote(rdir)}",
            ],
            60,
            "mkdir",
            self.host,
        )
        if r.returncode != 0:
            raise RemoteError(f"cannot create {rdir} on {self.host}: {_last_line(r.stderr)}")
        r = _run(
            [
                "scp",
                "-q",
                "-r",
                *self.ssh.base_args(scp=True),
                "--",
                *[str(p) for p in bundle.iterdir() if p.name != "venv"],  # install.sh makes that on the device
                f"{self.host}:{rdir}/",
            ],
            600,
            "copy",
            self.host,
        )
        if r.returncode != 0:
            raise RemoteError(f"copying the bundle to {self.host} failed: {_last_line(r.stderr)}")
        return rdir

    def measure(self, rdir: str, model_name: str, args: list[str], out_local: Path) -> dict:
        remote_out = f"result_{_safe_name(out_local.stem)}.json"
        python = " ".join(shlex.quote(w) for w in self.p.python_words())
        cmd = (
            f"cd {shlex.quote(rdir)} && {python} runner.py measure --model {shlex.quote(model_name)} --inputs "
            f"inputs.npz --out {remote_out} " + " ".join(shlex.quote(a) for a in args)
        )
        r = _run(["ssh", *self.ssh.base_args(), "--", self.host, cmd], self.ssh.timeout_s, "measurement", self.host)
        if r.returncode != 0:
            msg = _last_line(r.stderr)
            if r.returncode == 3 or "missing package" in msg or "No module named" in msg:
                raise RemoteError(f"runtime missing on {self.host}: {msg}")
            raise RemoteError(f"measurement failed on {self.host} (exit {r.returncode}): {msg}")
        r = _run(
            ["scp", "-q", *self.ssh.base_args(scp=True), "--", f"{self.host}:{rdir}/{remote_out}", str(out_local)],
            300,
            "fetch",
            self.host,
        )
        if r.returncode != 0:
            raise RemoteError(f"fetching results from {self.host} failed: {_last_line(r.stderr)}")
        return json.loads(out_local.read_text())
