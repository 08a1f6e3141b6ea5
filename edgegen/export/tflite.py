"""TFLite export through Google's converter stack: litert-torch (fp32 and PT2E
static int8) and ai-edge-quantizer recipes (dynamic, fp16, full-integer w8a8,
16x8). ``litert_torch`` costs seconds and ~500 MB to import, so it is imported
only here, lazily."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from edgegen.errors import BackendError, signals_deferred
from edgegen.export.quant_modes import quant_mode

log = logging.getLogger("edgegen")


@contextlib.contextmanager
def _quiet():
    """litert-torch, the MLIR converter (C++, straight to fd 1/2) and ai-edge-quantizer print
    progress: keep the CLI readable. Errors still surface as exceptions."""
    import sys

    buf_out, buf_err = io.StringIO(), io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    env_before = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"  # litert-torch's rich console keeps its own stdout handle
    logging.disable(logging.WARNING)  # torch/torchao loggers hold their own handlers
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        with warnings.catch_warnings(), contextlib.redirect_stdout(buf_out), contextlib.redirect_stderr(buf_err):
            warnings.simplefilter("ignore")
            prev = logging.root.level
            logging.root.setLevel(logging.ERROR)
            try:
                yield
            finally:
                logging.root.setLevel(prev)
    finally:
        logging.disable(logging.NOTSET)
        if env_before is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = env_before
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)


def _import_litert():
    try:
        with _quiet(), signals_deferred():  # C extensions initialise here: a signal must not raise inside them
            import litert_torch  # noqa: F401
    except ImportError:
        raise BackendError("TFLite export needs litert-torch: pip install 'edgegen[tflite]'") from None
    return litert_torch


def _example(tok, batch: int):
    import torch

    x = torch.zeros(batch, tok.seq_len, dtype=torch.int32)
    x[:, 0] = tok.cls_id
    return x


def convert_fp32(model, tok, path: Path, batch: int, mode: dict | None = None) -> None:
    from edgegen.export.modes import export_mode

    litert_torch = _import_litert()
    with export_mode(model, **(mode or {})), _quiet(), signals_deferred():
        litert_torch.convert(model.eval(), (_example(tok, batch),)).export(str(path))


def convert_pt2e_int8(
    model,
    tok,
    path: Path,
    batch: int,
    cal_ids: np.ndarray,
    keep_float: list[str] = (),
    per_channel: bool = True,
    mode: dict | None = None,
) -> None:
    """PT2E static int8, symmetric weights (per channel or per tensor); LayerNorm/softmax stay float;
    embedding and position tables are weight-only int8 (:class:`edgegen.export.modes.int8_embedding_tables`).

    ``keep_float`` lists module names (e.g. ``blocks.1``) left in float.
    """
    import torch

    from edgegen.export.modes import export_mode, int8_embedding_tables

    litert_torch = _import_litert()
    with _quiet(), signals_deferred():
        from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        # the tables' dequantizing multiply stays float: quantizing its per-row scales as an int8
        # activation moved 4% of a student's predictions (0.1% in torch with the same tables)
        q = _skipping(PT2EQuantizer, list(keep_float) + ["int8_tables"])().set_global(
            get_symmetric_quantization_config(is_per_channel=per_channel, is_dynamic=False)
        )
        ex = _example(tok, batch)
        tables = int8_embedding_tables(model) if "embeddings" not in keep_float else contextlib.nullcontext()
        with export_mode(model, **(mode or {})), tables:
            gm = torch.export.export(model.eval(), (ex,)).module()
            gm = prepare_pt2e(gm, q)
            with torch.no_grad():
                for i in range(0, len(cal_ids) - batch + 1, batch):
                    gm(torch.from_numpy(cal_ids[i : i + batch]))
            gm = convert_pt2e(gm, fold_quantize=False)
            litert_torch.convert(gm, (ex,), quant_config=QuantConfig(pt2e_quantizer=q)).export(str(path))


def _skipping(base, keep_float: list[str]):
    """``base`` (litert-torch's PT2EQuantizer) that leaves the named modules and their children float.

    Its own ``set_module_name(name, None)`` asserts, and its name filter expects dynamo's
    ``L__self___a_b`` keys while torch.export records ``nn_module_stack`` values as ``("a.b", type)``.
    """

    from edgegen.export.keep_float import EMBEDDINGS_UNIT, in_unit

    def outside(n) -> bool:
        names = [v[0] for v in n.meta.get("nn_module_stack", {}).values()]  # outermost first
        inner = names[-1] if names else ""
        for k in keep_float:
            if k == EMBEDDINGS_UNIT:
                if in_unit(inner, k):
                    return False
            elif any(in_unit(f, k) for f in names):
                return False
        return True

    class SkippingPT2EQuantizer(base):
        def _annotate_for_static_quantization_config(self, model):
            return self._annotate_all_static_patterns(model, self.global_config, outside)

    return SkippingPT2EQuantizer


def quantize_aeq(float_path: Path, out: Path, recipe_name: str, cal_ids: np.ndarray | None, batch: int) -> None:
    """ai-edge-quantizer recipes on a float .tflite. Static modes calibrate with a
    min/max update (its default moving average clipped logits badly; README, "int8: which mode is the default")."""
    with _quiet(), signals_deferred():
        from ai_edge_quantizer import calibrator, quantizer, recipe
        from ai_edge_quantizer.utils import qsv_utils

        qt = quantizer.Quantizer(str(float_path))
        qt.load_quantization_recipe(_fp16_recipe() if recipe_name == "fp16" else getattr(recipe, recipe_name)())
        result = None
        if qt.need_calibration:
            from ai_edge_litert.interpreter import Interpreter

            sig = Interpreter(model_path=str(float_path)).get_signature_list()
            key = next(iter(sig))
            in_name = sig[key]["inputs"][0]
            data = {key: [{in_name: cal_ids[i : i + batch]} for i in range(0, len(cal_ids) - batch + 1, batch)]}
            cal = calibrator.Calibrator(
                bytes(qt._float_model_buffer), num_threads=os.cpu_count() or 1, qsv_update_func=qsv_utils.min_max_update
            )
            cal.calibrate(data, qt._recipe_manager)
            result = cal.get_model_qsvs()
        qt.quantize(result).export_model(str(out), overwrite=True)


def _fp16_recipe():
    return [
        {
            "regex": ".*",
            "operation": "*",
            "algorithm_key": "float_casting",
            "op_config": {
                "weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
                "compute_precision": "FLOAT",
                "explicit_dequantize": True,
            },
        }
    ]


def export(model, tok, path: Path, cfg, cal_ids: np.ndarray, keep_float: list[str] = (), **_) -> dict:
    batch = cfg.batch_size or 1
    info = {"input_name": "args_0", "output_name": "output_0", "input_shape": [batch, tok.seq_len]}
    step = quant_mode("tflite", cfg.quant).step
    if step == "pt2e_int8":
        info["kept_float"] = list(keep_float)
    info["impl"] = STEPS[step](model, tok, path, cfg, cal_ids, keep_float, batch)
    if cfg.strip_names:
        _strip_tensor_names(path)
    return info


def _as_float32(model, tok, path, cfg, cal_ids, keep_float, batch) -> str:
    from edgegen.export.config import graph_mode

    convert_fp32(model, tok, path, batch, graph_mode(cfg))
    return "litert-torch convert fp32"


def _pt2e_int8(model, tok, path, cfg, cal_ids, keep_float, batch) -> str:
    from edgegen.export.config import graph_mode

    convert_pt2e_int8(model, tok, path, batch, cal_ids, keep_float, cfg.per_channel, graph_mode(cfg))
    return (
        f"litert-torch PT2E static int8, {'per-channel' if cfg.per_channel else 'per-tensor'} weights, "
        "int8 embedding/position tables, float LayerNorm/softmax"
    )


def _quantizer_recipe(model, tok, path, cfg, cal_ids, keep_float, batch) -> str:
    """fp32 conversion, then an ai-edge-quantizer recipe on the float file."""
    from edgegen.export.config import graph_mode

    work = Path(tempfile.mkdtemp(prefix="edgegen-tfl-"))
    try:
        f32 = work / "fp32.tflite"
        convert_fp32(model, tok, f32, batch, graph_mode(cfg))
        quantize_aeq(f32, path, quant_mode("tflite", cfg.quant).recipe, cal_ids, batch)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    calibrated = quant_mode("tflite", cfg.quant).calibrates
    return f"ai-edge-quantizer {cfg.quant}" + (" (min/max calibration)" if calibrated else "")


# what makes each mode's file (quant_modes.QUANT_MODES names the step)
STEPS = {"fp32": _as_float32, "pt2e_int8": _pt2e_int8, "quantizer": _quantizer_recipe}


def _strip_tensor_names(path: Path) -> None:
    """Drop tensor names and the converter's description (TFLite's own ``strip_strings``), keeping
    the signature (runners find inputs by index, tools by signature). The converter names every
    tensor after its torch.export trace, ~90 bytes each: 5% of an int8 teacher, 10% of a small student."""
    from ai_edge_litert.tools import flatbuffer_utils as fbu

    model = fbu.read_model_from_bytearray(path.read_bytes())
    signatures = model.signatureDefs
    fbu.strip_strings(model)
    model.signatureDefs = signatures
    path.write_bytes(bytes(fbu.convert_object_to_bytearray(model)))
