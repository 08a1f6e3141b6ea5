"""``MODEL_CARD.md`` for an exported model: generated from the run's own records, never hand-written.

The Hugging Face model-card layout: YAML metadata between ``---`` lines (what a tool reads: file and source sha256s,
data, metrics), then sections a reviewer reads. The records: the export's sidecar (quantization, calibration,
verification), the manifests of the model it was exported from and of that model's teacher (training data,
configs, test metrics), and when given a data audit (:mod:`edgegen.audit`), a bench result (device measurements,
validity, the adversarial check) and a release's acceptance record. Whatever a record does not hold is said to be
missing, not guessed.
"""

from __future__ import annotations

import getpass
import json
import socket
import time
from pathlib import Path


def _manifest(path) -> dict | None:
    try:
        return json.loads((Path(path) / "manifest.json").read_text())
    except (OSError, ValueError, TypeError):
        return None


def _metric(m: dict | None, name: str) -> str:
    if not m or name not in m:
        return "not recorded"
    v = m[name]
    return f"{v['value']:.3f} (95% CI {v['ci'][0]:.3f}–{v['ci'][1]:.3f})" if isinstance(v, dict) else f"{v:.3f}"


def lineage(sidecar: dict) -> list[dict]:
    """The models behind an export, the exported one first: ``{"role", "path", "sha256", "manifest"}`` (a distilled
    model's student start and teacher, a pruned model's parent, and theirs)."""
    src = sidecar.get("source_model") or {}
    chain = [
        {
            "role": "exported from",
            "path": src.get("path"),
            "sha256": src.get("sha256"),
            "manifest": _manifest(src.get("path")),
        }
    ]
    seen = {src.get("path")}
    i = 0
    while i < len(chain) and len(chain) < 8:
        m = chain[i]["manifest"] or {}
        for key, role in (("student_from", "student started from"), ("parent", "pruned from"), ("teacher", "teacher")):
            p = m.get(key)
            if isinstance(p, str) and p not in seen:
                seen.add(p)
                pm = _manifest(p)
                chain.append(
                    {
                        "role": role,
                        "path": p,
                        "manifest": pm,
                        "sha256": (pm or {}).get("files", {}).get("model.safetensors"),
                    }
                )
        i += 1
    return chain


def _teacher(chain: list[dict]) -> dict | None:
    return next((c for c in chain[1:] if c["role"] == "teacher"), None)


def metadata(model: Path, sidecar: dict, chain: list[dict], audit: dict | None, bench_row: dict | None) -> dict:
    src = chain[0]["manifest"] or {}
    test = (src.get("metrics") or {}).get("test") or {}
    meta = {
        "library_name": "edgegen",
        "tags": ["genomics", "dna", "sequence-classification", sidecar.get("model_format"), sidecar.get("quant")],
        "model_file": model.name,
        "model_sha256": sidecar.get("file_sha256"),
        "source_model_sha256": chain[0]["sha256"],
        "teacher_sha256": (_teacher(chain) or {}).get("sha256"),
        "datasets": [(src.get("dataset") or {}).get("name")],
        "train_sha256": (src.get("dataset") or {}).get("train_sha256"),
        "num_classes": sidecar.get("num_classes"),
        "metrics": {k: test[k]["value"] for k in ("accuracy", "mcc", "f1", "auroc") if isinstance(test.get(k), dict)},
        "audit_verdict": (audit or {}).get("verdict"),
        "edgegen_version": src.get("edgegen_version"),
        "built_by": f"{getpass.getuser()}@{socket.gethostname()}",
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if bench_row:
        meta["device_metrics"] = {
            k: bench_row["metrics"][k]["value"]
            for k in ("accuracy", "mcc")
            if isinstance(bench_row.get("metrics", {}).get(k), dict)
        }
    return meta


def limits(sidecar: dict, audit: dict | None, bench_row: dict | None) -> list[str]:
    """Known limits, from what the records show."""
    tok = sidecar.get("tokenizer") or {}
    out = [
        "Trained and checked on one data set only; reads from other organisms, chemistries or protocols are "
        "outside what it was shown (use `edgegen watch`'s drift alarm in the field)."
    ]
    out.append(
        f"Reads are cut or padded to a {tok.get('max_len')}-nt window; `predict` classifies longer reads by "
        "averaging sliding windows."
    )
    if tok.get("kind") == "kmer_nonoverlap":
        out.append(
            "Non-overlapping k-mers: one insertion or deletion shifts every later k-mer, so indel-rich reads "
            "(nanopore) lose more accuracy than substitutions alone cost."
        )
    v = (bench_row or {}).get("validity") or {}
    if "rc_consistency" in v:
        out.append(
            f"Reverse-complement consistency is {v['rc_consistency']:.2f}: a read and its reverse complement "
            "get the same class that often (`predict --rc-average` averages both strands)."
        )
    if audit and audit.get("verdict") != "pass":
        out += [f"Data audit ({audit['verdict']}): {r}" for r in audit.get("reasons", [])[:4]]
    return out


def render(
    model: str | Path, *, audit: dict | None = None, bench: dict | None = None, acceptance: dict | None = None
) -> str:
    """The card of the exported ``model`` (its sidecar beside it) as Markdown with YAML metadata."""
    import yaml

    from edgegen.runtime.sidecar import read_sidecar

    model = Path(model)
    side = read_sidecar(model)
    chain = lineage(side)
    row = next((m for m in (bench or {}).get("models", []) if Path(str(m.get("model", ""))).name == model.name), None)
    meta = metadata(model, side, chain, audit, row)
    src = chain[0]["manifest"] or {}
    test = (src.get("metrics") or {}).get("test")
    teacher_test = (((_teacher(chain) or {}).get("manifest") or {}).get("metrics") or {}).get("test")
    ver = side.get("verification") or {}
    L = ["---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "", f"# Model card: {model.name}", ""]
    L += _details_and_lineage(side, chain)
    L += _data_section(src, side, audit)
    L += [
        "## Evaluation",
        "",
        "| | accuracy | MCC |",
        "|---|---|---|",
        f"| this model's source (test) | {_metric(test, 'accuracy')} | {_metric(test, 'mcc')} |",
        f"| teacher (test) | {_metric(teacher_test, 'accuracy')} | {_metric(teacher_test, 'mcc')} |",
    ]
    if row:
        L.append(
            f"| this file on {(bench or {}).get('device', {}).get('name', 'the device')} | "
            f"{_metric(row.get('metrics'), 'accuracy')} | {_metric(row.get('metrics'), 'mcc')} |"
        )
    L += [
        "",
        f"Export verification: argmax agreement with PyTorch {ver.get('argmax_agreement')}, accuracy drop "
        f"{ver.get('accuracy_drop_pp')} pp on {ver.get('n')} sequences.",
        "",
    ]
    L += _validity_and_device(row, acceptance)
    L += [
        "## Intended use and known limits",
        "",
        "Classifying DNA reads of the task above on a field device, as a screening call a person confirms.",
        "",
    ]
    L += [f"- {x}" for x in limits(side, audit, row)]
    L += [
        "",
        "## Who and when",
        "",
        f"Built by {meta['built_by']} on {meta['built']} with edgegen "
        f"{meta['edgegen_version']}; every number above is copied from the run's records.",
        "",
    ]
    return "\n".join(L)


def _details_and_lineage(side: dict, chain: list[dict]) -> list[str]:
    tok = side.get("tokenizer") or {}
    L: list[str] = []
    L += [
        "## Model details",
        "",
        f"- Format {side.get('model_format')}, quantization `{side.get('quant')}` ({side.get('quant_impl')}); "
        f"{side.get('params')} parameters, {side.get('macs')} MACs per read window.",
        f"- Tokenizer: {tok.get('kind')} (k={tok.get('k')}), window {tok.get('max_len')} nt; "
        f"{side.get('num_classes')} classes.",
        f"- File sha256 `{side.get('file_sha256')}`.",
        "",
    ]
    L += ["## Lineage and compression steps", ""]
    for c in chain:
        m = c["manifest"] or {}
        steps = {k: m[k] for k in ("train_config", "pruning", "distill_config") if k in m}
        L.append(
            f"- {c['role']} `{c['path']}` (weights sha256 `{c['sha256']}`)"
            + (f": {json.dumps(steps, sort_keys=True)}" if steps else "")
        )
    L += [f"- export: {json.dumps(side.get('config', {}), sort_keys=True)}", ""]
    return L


def _data_section(src: dict, side: dict, audit: dict | None) -> list[str]:
    cal = side.get("calibration") or {}
    ds = src.get("dataset") or {}
    L = [
        "## Data",
        "",
        f"- Training: `{ds.get('name')}` ({ds.get('n_train')} sequences, "
        f"train split sha256 `{ds.get('train_sha256')}`).",
        f"- Calibration: {cal.get('source')} ({cal.get('samples')} sequences, sha256 `{cal.get('sha256')}`, "
        f"method {cal.get('method') or 'none: no calibration for this mode'}).",
        f"- Audit: {audit['verdict'] if audit else 'not run (edgegen audit DATA)'}.",
        "",
    ]
    return L


def _validity_and_device(row: dict | None, acceptance: dict | None) -> list[str]:
    L = ["## Validity, robustness and device", ""]
    if acceptance:
        L.append(
            f"- Release acceptance set: {acceptance.get('reads')} reads, host accuracy "
            f"{acceptance.get('host_accuracy', 'unlabelled')}, RC consistency "
            f"{acceptance.get('host_rc_consistency'):.3f}."
        )
    if not row:
        L += [
            "- Device measurements, sequencing-error robustness and the adversarial check: not recorded (pass "
            "`--bench BENCH.json` from `edgegen bench … --attack ism`).",
            "",
        ]
        return L
    v = row.get("validity") or {}
    for rate, r in sorted((v.get("sequencing_error") or {}).items()):
        L.append(
            f"- {float(rate):.0%} sequencing errors: accuracy {r['accuracy']:.3f}, same call as clean "
            f"{r['agreement_with_clean']:.3f}."
        )
    if "ece" in v:
        L.append(f"- Calibration error (ECE): {v['ece']:.3f}.")
    a = row.get("attack")
    if a:
        rates = ", ".join(f"k={k}: {x:.0%}" for k, x in zip(range(1, len(a["success_at_k"]) + 1), a["success_at_k"]))
        L.append(
            f"- Adversarial ISM ({a['n']} correctly called test reads): calls flipped by at most k "
            f"substitutions: {rates}; median edits to flip {a.get('median_edits')}."
        )
    t1 = (row.get("timing") or {}).get("1", {}).get("latency_b1", {})
    if t1:
        L.append(
            f"- Latency (batch 1, 1 thread): p50 {t1['p50_ms']:.2f} ms; size {row.get('size_bytes')} bytes; "
            f"peak memory {row.get('peak_rss_mb')} MB."
        )
    return L + [""]


def parse(text: str) -> dict:
    """The YAML metadata of a card (what a tool reads back)."""
    import yaml

    if not text.startswith("---\n"):
        raise ValueError("a model card starts with its YAML metadata between --- lines")
    return yaml.safe_load(text.split("\n---\n", 1)[0][4:])
