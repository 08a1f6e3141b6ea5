"""``edgegen deploy | rollback | status``: the model's life on a device, from the host.

The host checks the bundle, copies it to the profile's ``deploy_dir`` (scp as ``bench`` does, or a plain copy when
the profile has no ``ssh:``) and runs the device side there: :mod:`edgegen.deploy_agent` through the bundle's own
``runner.py`` on the device, or in this process for a local folder. Nothing of a profile's text reaches a shell
unquoted; no option comes from it.
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import shutil
import socket
from pathlib import Path

from edgegen.errors import RemoteError, UsageError
from edgegen.releases import WHO


def _who() -> str:
    """``user@host`` of the person deploying, reduced to plain characters (it is logged on the device)."""
    import re

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    text = f"{user}@{socket.gethostname()}"
    text = re.sub(r"[^A-Za-z0-9_.@+-]", "_", text)[:64]
    return text if WHO.match(text) else "unknown"


def _profile(device):
    from edgegen.devices import DeviceProfile, load_device

    p = device if isinstance(device, DeviceProfile) else load_device(device)
    if not p.deploy_dir:
        raise UsageError(f"device {p.name} has no deploy_dir: add one to its profile (where releases live)")
    return p


def deploy(bundle: str | Path, device, *, trust: str | Path | None = None, force: bool = False) -> dict:
    """Install ``bundle`` on ``device`` as a new release; it becomes current only if its health check passes.

    Args:
        trust: the public key to pin at the first install (later installs verify with the pinned key).
        force: take an unsigned bundle, a downgrade, or replace the pinned key.

    Returns:
        The device's answer: version, promoted, health results, current, removed releases.
    """
    from edgegen.standalone import check_bundle

    bundle = Path(bundle)
    if not bundle.is_dir():
        raise UsageError("no such bundle folder", path=bundle)
    check_bundle(bundle)  # never copy a bundle that differs from its manifest
    trust_pem = None
    if trust is not None:
        if not Path(trust).is_file():
            raise UsageError("no such public key file", path=trust)
        trust_pem = Path(trust).read_bytes()
        from edgegen.signing import key_id

        key_id(trust_pem, where=str(trust))  # an Ed25519 PEM public key, or a one-line error naming the file
    p = _profile(device)
    if p.ssh is None:
        return _deploy_local(bundle, p, trust_pem, force)
    return _deploy_ssh(bundle, p, trust_pem, force)


def _deploy_local(bundle: Path, p, trust_pem, force) -> dict:
    from edgegen.deploy_agent import install

    incoming = Path(p.deploy_dir).expanduser() / "incoming" / f".{bundle.name[:40]}.{os.getpid()}.tmp"
    incoming.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copytree(bundle, incoming, ignore=shutil.ignore_patterns("venv", "__pycache__"))
        return _naming(bundle, incoming, install)(
            str(incoming),
            p.deploy_dir,
            trust_pem=trust_pem,
            force=force,
            keep=p.keep_releases,
            max_p50_ms=None if p.emulated else p.max_p50_ms,
            by=_who(),
        )
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def _naming(bundle: Path, incoming: Path, fn):
    """``fn`` whose errors name the user's bundle, not the copy being installed from."""
    from edgegen.errors import EdgegenError
    from edgegen.releases import ReleaseError

    def call(*a, **kw):
        try:
            return fn(*a, **kw)
        except EdgegenError as e:
            raise ReleaseError(str(e).replace(str(incoming), str(bundle))) from None

    return call


def _ssh(p, command: str, timeout: int, what: str):
    from edgegen.remote import _last_line, _run

    r = _run(["ssh", *p.ssh.base_args(), "--", p.ssh.target(), command], timeout, what, p.ssh.target())
    if r.returncode != 0:
        raise RemoteError(f"{what} on {p.ssh.target()} failed (exit {r.returncode}): {_last_line(r.stderr)}")
    lines = r.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise RemoteError(f"{what} on {p.ssh.target()} answered no result: {_last_line(r.stdout)}") from None


def _deploy_ssh(bundle: Path, p, trust_pem, force) -> dict:
    from edgegen.remote import SSHDevice

    dev = SSHDevice(p)
    name = f"incoming-{os.getpid()}"
    q = shlex.quote
    root = p.deploy_dir.rstrip("/")
    rdir = dev.push(bundle, name, into=f"{root}/incoming")
    python = " ".join(q(w) for w in p.python_words())
    args = ["--deploy-dir", root, "--keep", str(p.keep_releases), "--by", _who()]
    if p.max_p50_ms and not p.emulated:
        args += ["--max-p50-ms", str(p.max_p50_ms)]
    if force:
        args.append("--force")
    pre = ""
    if trust_pem is not None:
        key = f"{root}/incoming/{name}.pub"
        pre = f"printf %s {q(trust_pem.decode('ascii', 'replace'))} > {q(key)} && "
        args += ["--trust", key]
    cmd = f"{pre}{python} {q(rdir + '/runner.py')} deploy " + " ".join(q(a) for a in args)
    cleanup = f"; rc=$?; rm -rf {q(rdir)} {q(f'{root}/incoming/{name}.pub')}; exit $rc"
    return _ssh(p, cmd + cleanup, p.ssh.timeout_s, "deploy")


def _agent_command(p, verb: str, args: list[str]) -> str:
    """Run the deploy agent of a release already on the device: the current one's runner, else any release's."""
    q = shlex.quote
    root = p.deploy_dir.rstrip("/")
    python = " ".join(q(w) for w in p.python_words())
    rest = " ".join(q(a) for a in ["--deploy-dir", root, *args])
    return (
        f'for r in {q(root)}/current {q(root)}/releases/*; do if [ -f "$r/runner.py" ]; then '
        f'exec {python} "$r/runner.py" {verb} {rest}; fi; done; '
        f"echo 'edgegen: nothing is deployed in {root}' >&2; exit 1"
    )


def rollback(device, *, to: str | None = None) -> dict:
    """Make the previous release (or ``to``) current on ``device``, atomically."""
    from edgegen.releases import check_version

    if to is not None:
        check_version(to, "--to")
    p = _profile(device)
    if p.ssh is None:
        from edgegen.deploy_agent import rollback as local_rollback

        return local_rollback(p.deploy_dir, to=to, by=_who())
    args = ["--by", _who()] + (["--to", to] if to else [])
    return _ssh(p, _agent_command(p, "rollback", args), 300, "rollback")


def status(device) -> dict:
    """The releases on ``device``: versions, current and previous, installs, health checks, model hashes."""
    p = _profile(device)
    if p.ssh is None:
        from edgegen.deploy_agent import status as local_status

        return local_status(p.deploy_dir)
    return _ssh(p, _agent_command(p, "status", []), 120, "status")
