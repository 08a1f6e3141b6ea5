#!/usr/bin/env python3
"""How close can an int8 model get to this CPU's int8 peak? The runtimes' own matrix-multiply ceiling.

compare.py reports each model's batch-64 GMAC/s as a fraction of the int8 peak that the ISA allows
(cores x clock x VNNI MACs per cycle). This script measures what the same runtimes reach on the
simplest possible int8 workload at the widths edgegen's students have: a chain of four d x d linear
layers with ReLU (int8 activations between them, nothing else), over 64 sequences' worth of rows.
A transformer can only do worse than this: it adds attention's batched matmuls, LayerNorm, softmax
and GELU in float, and the quantize/dequantize around them.

    python benchmarks/gemm_ceiling.py [--rows 5440] [--widths 32 64 128 256 512] [--threads 2]

Backends: TFLite PT2E static int8 (XNNPACK), ONNX Runtime static QDQ int8 and dynamic int8 (edgegen's
ONNX default), and torch fp32 against the fp32 peak. Median of --runs timed runs after warm-up.
Writes benchmarks/results/<date>-<machine>-gemm-ceiling.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

LAYERS = 4


def chain(d: int):
    import torch

    torch.manual_seed(0)
    mods = []
    for _ in range(LAYERS):
        mods += [torch.nn.Linear(d, d), torch.nn.ReLU()]
    return torch.nn.Sequential(*mods).eval()


def timed(fn, runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def tflite_int8(model, x: np.ndarray, path: Path, threads: int):
    import torch

    from edgegen.export.tflite import _import_litert, _quiet
    from edgegen.runtime.tflite_runner import interpreter_class

    litert_torch = _import_litert()
    with _quiet():
        from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        q = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
        ex = torch.from_numpy(x)
        gm = prepare_pt2e(torch.export.export(model, (ex,)).module(), q)
        with torch.no_grad():
            gm(ex)
        gm = convert_pt2e(gm, fold_quantize=False)
        litert_torch.convert(gm, (ex,), quant_config=QuantConfig(pt2e_quantizer=q)).export(str(path))
    cls, _ = interpreter_class()
    it = cls(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    inp, o = it.get_input_details()[0], it.get_output_details()[0]["index"]
    scale, zp = inp.get("quantization", (0.0, 0))
    if inp["dtype"] != np.float32:  # the converter may make the graph's input int8 itself
        info = np.iinfo(inp["dtype"])
        x = np.clip(np.round(x / scale) + zp, info.min, info.max).astype(inp["dtype"])
    it.set_tensor(inp["index"], x)

    def run():
        it.invoke()
        return it.get_tensor(o)

    return run


def onnx_int8(model, x: np.ndarray, path: Path, threads: int, mode: str):
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    fp = path.with_suffix(".fp32.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (torch.from_numpy(x),), str(fp), input_names=["x"], output_names=["y"], dynamo=False)
    if mode == "dynamic":
        quantize_dynamic(str(fp), str(path), weight_type=QuantType.QInt8)
    else:

        class One(CalibrationDataReader):
            def __init__(self):
                self.done = False

            def get_next(self):
                if self.done:
                    return None
                self.done = True
                return {"x": x}

        quantize_static(
            str(fp),
            str(path),
            One(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda: sess.run(None, {"x": x})


def torch_fp32(model, x: np.ndarray, threads: int):
    import torch

    torch.set_num_threads(threads)
    xt = torch.from_numpy(x)

    def run():
        with torch.inference_mode():
            return model(xt)

    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=64 * 85, help="matrix rows: 64 sequences x 85 tokens by default")
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)

    from compare import cpu_peak

    from edgegen.io import write_json

    peak = cpu_peak()
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgegen-gemm-") as tmp:
        for d in args.widths:
            model = chain(d)
            x = rng.standard_normal((args.rows, d)).astype(np.float32)
            macs = args.rows * d * d * LAYERS
            runners = {
                "tflite-int8": lambda: tflite_int8(model, x, Path(tmp) / f"c{d}.tflite", args.threads),
                "onnx-static-int8": lambda: onnx_int8(model, x, Path(tmp) / f"s{d}.onnx", args.threads, "static"),
                "onnx-dynamic-int8": lambda: onnx_int8(model, x, Path(tmp) / f"d{d}.onnx", args.threads, "dynamic"),
                "torch-fp32": lambda: torch_fp32(model, x, args.threads),
            }
            row = {"d": d, "rows": args.rows, "mmac": macs / 1e6}
            for name, make in runners.items():
                try:
                    s = timed(make(), args.runs)
                    gmacs = macs / s / 1e9
                    p = peak["fp32_peak_gmacs"] if name.endswith("fp32") else peak["int8_peak_gmacs"]
                    row[name] = {"median_ms": s * 1e3, "gmacs": gmacs, "peak_fraction": gmacs / p}
                except Exception as e:  # a backend that cannot build this shape is reported, not fatal
                    row[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"}
                print(
                    f"  d={d:4d} {name:18s} "
                    + (
                        f"{row[name]['gmacs']:7.1f} GMAC/s  {100 * row[name]['peak_fraction']:3.0f}% of peak"
                        if "gmacs" in row[name]
                        else row[name]["error"]
                    ),
                    flush=True,
                )
            rows.append(row)
    names = ["tflite-int8", "onnx-static-int8", "onnx-dynamic-int8", "torch-fp32"]
    lines = [
        f"Chain of {LAYERS} d x d linear layers + ReLU, {args.rows} rows, {args.threads} threads, median of {args.runs}; "
        f"int8 peak {peak['int8_peak_gmacs']:.0f} GMAC/s, fp32 peak {peak['fp32_peak_gmacs']:.0f} GMAC/s ({peak['derivation']}).",
        "",
        "| d | " + " | ".join(f"{n} GMAC/s (% of peak)" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for r in rows:
        cells = [
            f"{r[n]['gmacs']:.0f} ({100 * r[n]['peak_fraction']:.0f}%)" if "gmacs" in r[n] else "error" for n in names
        ]
        lines.append(f"| {r['d']} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    out = Path(args.out) / f"{time.strftime('%Y-%m-%d')}-{platform.node() or 'machine'}-gemm-ceiling.json"
    write_json(
        out,
        {
            "schema": "edgegen-gemm-ceiling/1",
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "args": vars(args),
            "cpu_peak": peak,
            "layers": LAYERS,
            "rows": rows,
            "markdown": lines,
        },
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
