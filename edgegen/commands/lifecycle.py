"""Commands of a model's life on a device: keys new, deploy, rollback, status (the library: :mod:`edgegen.deploy`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from edgegen.commands import app, console

keys_app = typer.Typer(help="Signing keys for bundles.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
def keys_new(
    out: Path = typer.Option(..., "--out", help="Folder for edgegen-signing.key (owner-only) and edgegen-signing.pub."),
    force: bool = typer.Option(False, "--force", help="Replace a key pair already there."),
):
    """Make an Ed25519 key pair: sign bundles with the private key, pin the public one on devices."""
    from edgegen.errors import UsageError
    from edgegen.signing import key_id, new_keys

    try:
        priv, pub = new_keys(str(out), force=force)
    except FileExistsError as e:
        raise UsageError(
            "a key is already there (--force replaces it; bundles signed with it will not verify)", path=str(e)
        ) from None
    console().print(
        f"private key: {priv} (keep it secret)\npublic key:  {pub} (key id {key_id(Path(pub).read_bytes())})"
    )


@app.command()
def deploy(
    bundle: Path = typer.Argument(..., help="A bundle folder made with --acceptance (and --sign)."),
    device: str = typer.Option(..., "--device", help="Device profile with a deploy_dir."),
    trust: Optional[Path] = typer.Option(
        None, "--trust", help="Public key to pin on the device at its first install (later ones must match it)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Take an unsigned bundle or a downgrade; replace the pinned key."
    ),
):
    """Install a bundle as a new release on a device; it becomes current only when its health check passes."""
    from edgegen.deploy import deploy as run_deploy

    res = run_deploy(bundle, device, trust=trust, force=force)
    h = res["health"]
    shown = ", ".join(f"{k} {h[k]:.3f}" for k in ("agreement", "accuracy", "rc_consistency") if k in h)
    if "p50_ms" in h:
        shown += f", p50 {h['p50_ms']:.2f} ms (limit {h['max_p50_ms']:g})"
    if res["promoted"]:
        console().print(f"release {res['version']} is current ({shown})")
        if res["removed"]:
            console().print(f"removed old releases: {', '.join(res['removed'])}")
        return
    console().print(f"release {res['version']} failed its health check: {h.get('why')}")
    console().print(f"current release unchanged: {res['current'] or 'none'}")
    raise typer.Exit(1)


@app.command()
def rollback(
    device: str = typer.Option(..., "--device", help="Device profile with a deploy_dir."),
    to: Optional[str] = typer.Option(None, "--to", help="The release to make current (default: the previous one)."),
):
    """Make the previous (or named) release current again, atomically."""
    from edgegen.deploy import rollback as run_rollback

    res = run_rollback(device, to=to)
    if res.get("changed", True):
        console().print(f"release {res['current']} is current (was {res['previous']})")
    else:
        console().print(f"release {res['current']} was already current")


@app.command()
def status(
    device: str = typer.Option(..., "--device", help="Device profile with a deploy_dir."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also save the status as JSON."),
):
    """The releases on a device: which is current, who installed each and when, health checks, model sha256."""
    from edgegen.deploy import status as run_status

    st = run_status(device)
    t = Table(title=f"releases in {st['deploy_dir']} (trusted key {st['trusted_key'] or 'none'})")
    for c in ("version", "", "installed (UTC)", "by", "health", "model sha256"):
        t.add_column(c)
    for r in reversed(st["releases"]):
        mark = "current" if r["version"] == st["current"] else ("previous" if r["version"] == st["previous"] else "")
        h = r["health"] or {}
        health = "passed" if h.get("ok") else (f"failed: {h.get('why')}" if h else "-")
        t.add_row(r["version"], mark, r["installed"] or "-", r["by"] or "-", health, (r["model_sha256"] or "-")[:16])
    console().print(
        t if st["releases"] else f"no releases in {st['deploy_dir']} yet (edgegen deploy BUNDLE --device …)"
    )
    if json_out is not None:
        from edgegen.io import write_json

        write_json(json_out, st)


@app.command()
def watch(
    run_dir: Path = typer.Argument(..., help="A sequencing run folder (MinKNOW's, or any folder of FASTA/FASTQ)."),
    model: Path = typer.Option(..., "--model", help=".onnx / .tflite (in a bundle: its REFERENCE.json is used)."),
    out: Path = typer.Option(..., "--out", help="Folder for results, checkpoint, drift.jsonl and status.html."),
    poll: float = typer.Option(2.0, "--poll", help="Seconds between looks at the folder."),
    idle_timeout: Optional[float] = typer.Option(None, "--idle-timeout", help="Stop after this long without reads."),
    chunk: int = typer.Option(500, "--chunk", help="Reads per drift check."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="A drift reference (REFERENCE.json)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="Runtime threads (default: the runtime's)."),
):
    """Classify reads as the sequencer writes them, with a drift alarm; stops at the run's end, --idle-timeout or
    Ctrl-C, and picks up where it stopped when started again."""
    from edgegen.errors import UsageError
    from edgegen.io import read_json
    from edgegen.watch import WatchConfig
    from edgegen.watch import watch as run_watch

    if not run_dir.is_dir():
        raise UsageError("no such run folder", path=run_dir)
    if poll <= 0 or chunk < 50:
        raise UsageError("--poll must be > 0 and --chunk >= 50")
    ref = None
    if reference:
        from edgegen.drift import check_reference

        ref = check_reference(read_json(reference, missing="no such reference file"), reference)
    cfg = WatchConfig(poll_s=poll, idle_timeout_s=idle_timeout, chunk_reads=chunk, threads=threads)
    s = run_watch(run_dir, model, out, cfg, reference=ref)
    counts = "; ".join(f"{b}: {c}" for b, c in sorted(s["barcodes"].items()))
    console().print(f"{s['reads']} reads from {s['files_done']} files ({counts}); {s['stopped']}")
    if s["drift"]:
        console().print(f"drift: {s['drift']['state']}" + "".join(f"\n- {r}" for r in s["drift"]["reasons"]))
    console().print(f"status page: {out / 'status.html'}")


@app.command()
def monitor(
    device: str = typer.Option(..., "--device", help="Device profile with watch_out (where its watch writes)."),
    last: int = typer.Option(5, "--last", help="How many drift checks to show."),
):
    """What a device's live watch says: reads so far, per-barcode counts, keep-up, and the last drift checks."""
    from edgegen.monitor import monitor as run_monitor

    m = run_monitor(device, last=last)
    s = m["status"]
    t = Table(title=f"{s['reads']} reads from {s['files_done']} files; model {s['model_version']} ({s['updated']})")
    t.add_column("barcode")
    t.add_column("calls per class")
    for b, c in sorted(s["barcodes"].items()):
        t.add_row(b, ", ".join(str(x) for x in c))
    console().print(t)
    ku = s["keep_up"]
    console().print(
        f"keep-up: classified {ku.get('classified_reads_per_s') or 0:.1f} reads/s, arriving "
        f"{ku.get('arriving_reads_per_s') or 0:.1f} reads/s"
    )
    for d in m["drift"]:
        console().print(f"chunk {d['chunk']} ({d['time']}): {d['state']}" + "".join(f"; {r}" for r in d["reasons"]))
