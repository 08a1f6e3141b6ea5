"""What runs on the device for ``edgegen deploy | rollback | status`` (a bundle's ``runner.py deploy|rollback|status``,
or in this process for a deploy folder on this machine). The folder layout and its safe primitives are
:mod:`edgegen.releases`; the health check is :mod:`edgegen.health`.

Install: lock → verify (signature under the pinned key, manifest) → version (no reinstall, no downgrade without
``force``) → copy to a temp folder, verify the copy, freeze it, rename it into ``releases/`` → health check →
switch ``current`` (one rename) and ``previous`` → prune to the newest ``keep`` (never current or previous) → log.
"""

from __future__ import annotations

import json
import os
import shutil

from edgegen.releases import (
    KEEP,
    DeployDir,
    ReleaseError,
    check_version,
    freeze,
    pin_key,
    remove_tree,
    step_point,
    trusted_key,
    verify_release,
    version_key,
)


def install(
    incoming: str,
    deploy_dir: str,
    *,
    trust_pem: bytes | None = None,
    force: bool = False,
    keep: int = KEEP,
    max_p50_ms: float | None = None,
    by: str = "",
    open_runner=None,
) -> dict:
    """Install the bundle folder ``incoming`` as a release of ``deploy_dir`` and make it current if healthy.

    Returns: {"version", "promoted", "health", "current", "removed"}; a failed health check is not an error (the
    previous release stays current; ``promoted`` is False and ``health["why"]`` says why).

    Raises:
        ReleaseError: one line naming the file or release (unsigned, another key, a changed file, a reinstall,
            a downgrade).
    """
    dd = DeployDir(deploy_dir)
    with dd.lock():
        dd.clean_stale()
        step_point("locked")
        pem, pin = trusted_key(dd, incoming, trust_pem, force)
        manifest = verify_release(incoming, pem, "--trust key")
        version = check_version(manifest.get("version"), os.path.join(incoming, "MANIFEST.json"))
        if pin:
            pin_key(dd, pem)
        step_point("verified")
        dd.log("verified", version=version, by=by, signed=pem is not None)
        current = dd.link("current")
        _make_room(dd, incoming, version)
        if current and version_key(version) < version_key(current) and not force:
            raise ReleaseError(
                f"{incoming}: version {version} is older than the current {current} (--force to downgrade)"
            )
        folder = _install_copy(dd, incoming, version, pem)
        dd.log(
            "installed",
            version=version,
            by=by,
            model=manifest["model"],
            model_sha256=manifest["files"][manifest["model"]],
            signed=pem is not None,
        )
        step_point("installed")
        health = _health(folder, manifest, max_p50_ms, open_runner)
        _write_json(dd, "health", version, health)
        dd.log(
            "health", version=version, by=by, ok=health["ok"], **({"why": health["why"]} if not health["ok"] else {})
        )
        step_point("checked")
        if not health["ok"]:
            remove_tree(folder)
            dd.log("removed", version=version, by=by, why="failed its health check")
            return {"version": version, "promoted": False, "health": health, "current": current, "removed": [version]}
        _switch(dd, version, current, by, "switch")
        step_point("switched")
        removed = _prune(dd, keep, by)
        return {"version": version, "promoted": True, "health": health, "current": version, "removed": removed}


def _make_room(dd: DeployDir, incoming: str, version: str) -> None:
    """A release of this version already there: a deploy retried after an interruption (the same manifest, never
    made current) is redone from the start; anything else is refused."""
    folder = os.path.join(dd.releases, version)
    if not os.path.exists(folder):
        return
    in_use = version in (dd.link("current"), dd.link("previous"))
    with (
        open(os.path.join(folder, "MANIFEST.json"), "rb") as a,
        open(os.path.join(incoming, "MANIFEST.json"), "rb") as b,
    ):
        same = a.read() == b.read()
    if in_use or not same:
        how = f"rollback --to {version} makes it current" if same else "with other files: give the bundle a new version"
        raise ReleaseError(f"already installed ({how})", path=folder)
    remove_tree(folder)
    dd.log("retry", version=version, why="installed by a deploy that did not finish; installing again")


def _install_copy(dd: DeployDir, incoming: str, version: str, pem: bytes | None) -> str:
    os.makedirs(dd.releases, exist_ok=True)
    tmp = os.path.join(dd.releases, f".{version}.{os.getpid()}.tmp")
    shutil.copytree(incoming, tmp, symlinks=True, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    verify_release(tmp, pem, "--trust key")  # what was copied is what was verified
    freeze(tmp)
    folder = os.path.join(dd.releases, version)
    os.rename(tmp, folder)
    return folder


def _health(folder: str, manifest: dict, max_p50_ms: float | None, open_runner) -> dict:
    record = manifest.get("acceptance")
    if not isinstance(record, dict):
        return {"ok": False, "why": "the bundle carries no acceptance set (edgegen bundle … --acceptance DATA)"}
    from edgegen.health import check_release

    try:
        return check_release(folder, manifest["model"], record, max_p50_ms=max_p50_ms, open_runner=open_runner)
    except Exception as e:  # a model the runtime rejects on this device fails its check; it never becomes current
        return {"ok": False, "why": f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"}


def _write_json(dd: DeployDir, sub: str, version: str, obj: dict) -> None:
    from edgegen.io import write_json

    write_json(dd.path(sub, f"{version}.json"), obj)


def _switch(dd: DeployDir, version: str, current: str | None, by: str, event: str) -> None:
    if current and current != version:
        dd.point("previous", current)
    dd.point("current", version)
    dd.log(event, version=version, previous=current, by=by)


def _prune(dd: DeployDir, keep: int, by: str) -> list[str]:
    """Remove the oldest releases beyond ``keep``; never the current one or the rollback target."""
    hold = {dd.link("current"), dd.link("previous")}
    order = [e["version"] for e in dd.events() if e.get("event") == "installed"]
    installed = sorted(dd.versions(), key=lambda v: (order.index(v) if v in order else -1, version_key(v)))
    removed = []
    for v in installed:  # the oldest first, until no more than keep are left
        if len(installed) - len(removed) <= max(keep, 2):
            break
        if v not in hold:
            remove_tree(os.path.join(dd.releases, v))
            removed.append(v)
    if removed:
        dd.log("pruned", versions=removed, by=by)
    return removed


def rollback(deploy_dir: str, *, to: str | None = None, by: str = "") -> dict:
    """Make ``to`` (default: the previous release) current with one rename, once it verifies against its manifest
    and the pinned key."""
    dd = DeployDir(deploy_dir)
    with dd.lock():
        dd.clean_stale()
        current = dd.link("current")
        target = check_version(to, "--to") if to else dd.link("previous")
        if target is None:
            raise ReleaseError(f"{dd.path('previous')}: no previous release to roll back to (name one with --to)")
        folder = os.path.join(dd.releases, target)
        if not os.path.isdir(folder):
            raise ReleaseError(f"{folder}: no such release (installed: {', '.join(dd.versions()) or 'none'})")
        pinned = dd.path("trusted.pub")
        pem = open(pinned, "rb").read() if os.path.exists(pinned) else None
        from edgegen.signing import is_signed

        verify_release(folder, pem if is_signed(folder) else None, pinned)
        if target == current:
            return {"current": current, "previous": dd.link("previous"), "changed": False}
        _switch(dd, target, current, by, "rollback")
        return {"current": target, "previous": current, "changed": True}


def status(deploy_dir: str) -> dict:
    """The releases, which is current and previous, when and by whom each was installed, its health-check results,
    its model's sha256, and the pinned key."""
    dd = DeployDir(deploy_dir)
    events = dd.events()
    rows = []
    for v in dd.versions():
        inst = next((e for e in reversed(events) if e.get("event") == "installed" and e.get("version") == v), {})
        try:
            with open(dd.path("health", f"{v}.json")) as fh:
                health = json.load(fh)
        except (OSError, ValueError):
            health = None
        rows.append(
            {
                "version": v,
                "installed": inst.get("time"),
                "by": inst.get("by"),
                "model": inst.get("model"),
                "model_sha256": inst.get("model_sha256"),
                "signed": inst.get("signed"),
                "health": health,
            }
        )
    key = None
    if os.path.exists(dd.path("trusted.pub")):
        from edgegen.signing import key_id

        key = key_id(open(dd.path("trusted.pub"), "rb").read())
    return {
        "deploy_dir": dd.root,
        "current": dd.link("current"),
        "previous": dd.link("previous"),
        "trusted_key": key,
        "releases": rows,
        "events": len(events),
    }
