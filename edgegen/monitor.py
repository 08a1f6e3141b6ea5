"""``edgegen monitor --device P``: what a device's live watch reports (its ``status.json`` and the last drift checks
in ``drift.jsonl``), fetched over ssh with the profile's options, or read from a folder for a profile without ssh."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from edgegen.errors import RemoteError, UsageError


def monitor(device, *, last: int = 5) -> dict:
    """``{"status": status.json, "drift": the last ``last`` drift checks}`` of the device's watch."""
    from edgegen.devices import DeviceProfile, load_device

    p = device if isinstance(device, DeviceProfile) else load_device(device)
    if not p.watch_out:
        raise UsageError(f"device {p.name} has no watch_out: add the folder its runner.py watch writes to")
    if p.ssh is None:
        root = Path(p.watch_out).expanduser()
        status = root / "status.json"
        if not status.is_file():
            raise UsageError("no status.json: is a watch writing here?", path=root)
        drift = root / "drift.jsonl"
        lines = drift.read_text().splitlines()[-last:] if drift.is_file() else []
        return {"status": json.loads(status.read_text()), "drift": [json.loads(x) for x in lines if x.strip()]}
    from edgegen.remote import _last_line, _run

    q = shlex.quote
    root = p.watch_out.rstrip("/")
    drift = q(root + "/drift.jsonl")
    cmd = f"cat {q(root + '/status.json')} && echo && (tail -n {int(last)} {drift} 2>/dev/null || true)"
    r = _run(["ssh", *p.ssh.base_args(), "--", p.ssh.target(), cmd], 60, "monitor", p.ssh.target())
    if r.returncode != 0:
        raise RemoteError(f"no watch status on {p.ssh.target()} in {root}: {_last_line(r.stderr)}")
    first, _, rest = r.stdout.partition("\n}\n")
    try:
        status = json.loads(first + "\n}")
        drift = [json.loads(x) for x in rest.splitlines() if x.strip()]
    except ValueError:
        raise RemoteError(f"the watch status on {p.ssh.target()} is not JSON: {_last_line(r.stdout)}") from None
    return {"status": status, "drift": drift}
