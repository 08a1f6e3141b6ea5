"""The on-device runner's commands (``python runner.py measure|predict …`` in a bundle, after its check): argparse
only, numpy + one runtime underneath; every error is one line on stderr and an exit code."""

from __future__ import annotations

import argparse
import json
import sys

from edgegen.io import write_json


def main(argv: list[str] | None = None, open_runner=None) -> int:
    ap = argparse.ArgumentParser(prog="runner.py", description="edgegen on-device runner (numpy + one runtime)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="logits, latency and memory of one model")
    m.add_argument("--model", required=True)
    m.add_argument("--inputs", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--threads", type=int, default=None)
    m.add_argument("--warmup", type=int, default=10)
    m.add_argument("--runs", type=int, default=100)
    m.add_argument("--batch", type=int, default=64)
    m.add_argument("--no-logits", action="store_true")
    m.add_argument("--no-latency", action="store_true")
    m.add_argument("--providers", default=None, help="comma-separated ONNX Runtime execution providers")
    p = sub.add_parser("predict", help="classify reads from FASTA/FASTQ (see edgegen predict)")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=None)
    _release_commands(sub)
    args = ap.parse_args(argv)
    from edgegen.errors import EdgegenError

    try:
        if args.cmd == "watch":
            from edgegen.watch import WatchConfig, watch

            cfg = WatchConfig(
                poll_s=args.poll, idle_timeout_s=args.idle_timeout, chunk_reads=args.chunk, threads=args.threads
            )
            print(json.dumps(watch(args.run_dir, args.model, args.out, cfg, open_runner=open_runner)))
        elif args.cmd in ("deploy", "rollback", "status"):
            print(json.dumps(_release_command(args, open_runner)))
        elif args.cmd == "measure":
            from edgegen.standalone import measure

            res = measure(
                args.model,
                args.inputs,
                threads=args.threads,
                warmup=args.warmup,
                runs=args.runs,
                batch=args.batch,
                logits=not args.no_logits,
                latency=not args.no_latency,
                providers=args.providers.split(",") if args.providers else None,
                open_runner=open_runner,
            )
            write_json(args.out, res)
        else:
            from edgegen.predict import PredictConfig, predict
            from edgegen.standalone import verify_bundle

            verify_bundle(args.model)
            stats = predict(
                args.model,
                args.input,
                args.out,
                PredictConfig(batch_size=args.batch, threads=args.threads),
                show_progress=False,
                open_runner=open_runner,
            )
            print(json.dumps(stats))
    except EdgegenError as e:
        print(f"edgegen-runner: error: {e}", file=sys.stderr)
        return e.exit_code
    except ImportError as e:
        print(f"edgegen-runner: error: missing package on this machine: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("edgegen-runner: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        print(f"edgegen-runner: error: {e.filename or ''}: {e.strerror or type(e).__name__}", file=sys.stderr)
        return 1
    except (ValueError, RuntimeError) as e:  # a runtime rejecting its input, a malformed .npz
        print(f"edgegen-runner: error: {type(e).__name__}: {' '.join(str(e).split())[:300]}", file=sys.stderr)
        return 1
    return 0


def _release_commands(sub) -> None:
    d = sub.add_parser("deploy", help="install this bundle as a release of --deploy-dir, health-check it, switch")
    d.add_argument("--deploy-dir", required=True)
    d.add_argument("--bundle", default=None, help="the bundle folder (default: runner.py's own)")
    d.add_argument("--trust", default=None, help="a public key file to pin at the first install")
    d.add_argument("--force", action="store_true")
    d.add_argument("--keep", type=int, default=3)
    d.add_argument("--max-p50-ms", type=float, default=None)
    d.add_argument("--by", default="")
    r = sub.add_parser("rollback", help="make the previous (or --to) release current")
    r.add_argument("--deploy-dir", required=True)
    r.add_argument("--to", default=None)
    r.add_argument("--by", default="")
    s = sub.add_parser("status", help="the releases of --deploy-dir, as JSON")
    s.add_argument("--deploy-dir", required=True)
    w = sub.add_parser("watch", help="classify reads as a sequencer writes them (see edgegen watch)")
    w.add_argument("run_dir")
    w.add_argument("--model", required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--poll", type=float, default=2.0)
    w.add_argument("--idle-timeout", type=float, default=None)
    w.add_argument("--chunk", type=int, default=500)
    w.add_argument("--threads", type=int, default=None)


def _release_command(args, open_runner) -> dict:
    import os

    from edgegen import deploy_agent

    if args.cmd == "status":
        return deploy_agent.status(args.deploy_dir)
    if args.cmd == "rollback":
        return deploy_agent.rollback(args.deploy_dir, to=args.to, by=args.by)
    trust = None
    if args.trust:
        with open(args.trust, "rb") as fh:
            trust = fh.read()
    bundle = args.bundle or os.path.dirname(os.path.abspath(sys.argv[0]))
    return deploy_agent.install(
        bundle,
        args.deploy_dir,
        trust_pem=trust,
        force=args.force,
        keep=args.keep,
        max_p50_ms=args.max_p50_ms,
        by=args.by,
        open_runner=open_runner,
    )


if __name__ == "__main__":
    sys.exit(main())
