"""Recipes: the whole pipeline as data.

A recipe is YAML: ``data``, ``out`` and a list of ``steps``, each
``{type: <registered step>, ...params}`` validated by pydantic (unknown keys
are errors). ``edgegen run`` executes them in order: teacher (train or load)
-> prune (a sweep of targets) -> distill -> export (formats x quant modes) ->
bench -> report. Every stage writes into ``RUN_DIR/<stage>/`` with a
``stage.json`` holding the hash of its config and inputs; a rerun skips stages
whose hash is unchanged, and a run interrupted mid-stage resumes at that stage
(earlier outputs are never touched: each stage is built in a temp folder and
moved into place).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgegen.distill import DistillConfig, StudentConfig
from edgegen.errors import ConfigError, UsageError
from edgegen.export import ExportConfig
from edgegen.prune import PruneConfig
from edgegen.train import TrainConfig

log = logging.getLogger("edgegen")

SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # a name that becomes one folder: no '/', no '..'


class TrainStep(TrainConfig):
    """Train the teacher from the recipe's data."""

    type: Literal["train"]


class LoadStep(BaseModel):
    """Use an existing native model directory (or a Hugging Face checkpoint dir with ``hf: true``) as the teacher."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["load"]
    path: str
    hf: bool = False


class PruneStep(BaseModel):
    """Prune the teacher; ``targets`` makes a sweep (one branch per fraction of parameters kept)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["prune"]
    targets: list[float] = Field(default_factory=lambda: [0.5], min_length=1)
    metric: Literal["params", "macs"] = "params"
    criterion: Literal["l1", "l2", "taylor", "random"] = "l2"
    global_pruning: bool = False
    drop_layers: int = Field(0, ge=0)
    prune_heads: bool = True
    prune_ffn: bool = True

    @model_validator(mode="after")
    def _check(self) -> "PruneStep":
        for t in self.targets:
            if not 0 < t < 1:
                raise ValueError(f"targets must be in (0, 1), got {t}")
        return self

    def config(self, target: float) -> PruneConfig:
        key = "target_params" if self.metric == "params" else "target_macs"
        return PruneConfig(**{key: target}, criterion=self.criterion, global_pruning=self.global_pruning,
                           drop_layers=self.drop_layers, prune_heads=self.prune_heads, prune_ffn=self.prune_ffn)


class StudentStep(StudentConfig):
    """A fresh smaller student (instead of, or besides, pruned ones): fields not given copy the teacher."""

    type: Literal["student"]
    name: str = Field("student", pattern=SAFE_NAME, description="names the stage folder: letters, digits, '.', '_', '-'")


class DistillStep(DistillConfig):
    """Distil the teacher into every pruned branch and student (``unlabeled``: reads for the KD term; the teacher's
    logits are computed once into the run's ``teacher-logits`` store and shared by every branch)."""

    type: Literal["distill"]
    unlabeled: str | None = Field(None, description="FASTA/FASTQ/table of unlabeled reads for the KD term (a path, as data is)")


class ExportStep(BaseModel):
    """Export every compressed model (and the teacher with ``include_teacher``) in each format x quant."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["export"]
    formats: list[Literal["onnx", "tflite"]] = Field(default_factory=lambda: ["tflite", "onnx"], min_length=1)
    quant: list[str] = Field(default_factory=lambda: ["int8"], min_length=1)
    max_drop: float | None = Field(1.0, gt=0)
    include_teacher: bool = False
    calib_samples: int = Field(128, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "ExportStep":
        for f in self.formats:
            for q in self.quant:
                ExportConfig(format=f, quant=q)  # raises on unsupported pairs
        return self


class BenchStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["bench"]
    device: str = "local"
    runs: int | None = Field(None, ge=5)
    warmup: int | None = Field(None, ge=0)
    threads: list[int] | None = None
    max_samples: int | None = Field(None, ge=10)
    validity: bool = True


Step = Annotated[Union[TrainStep, LoadStep, PruneStep, StudentStep, DistillStep, ExportStep, BenchStep], Field(discriminator="type")]
STEP_TYPES = ("train", "load", "prune", "student", "distill", "export", "bench")


class Recipe(BaseModel):
    """A whole pipeline. ``data``: a split folder or ``synthetic:TASK[:N[:LEN]]``; ``out``: the run directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "recipe"
    data: str | None = None
    out: str = "runs/recipe"
    seed: int = 0
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> "Recipe":
        kinds = [s.type for s in self.steps]
        teachers = kinds.count("train") + kinds.count("load")
        if teachers != 1:
            raise ValueError("steps need exactly one teacher step (type: train or type: load)")
        if kinds[0] not in ("train", "load"):
            raise ValueError("the first step must be the teacher (type: train or type: load)")
        for k in ("prune", "distill", "bench"):
            if kinds.count(k) > 1:
                raise ValueError(f"at most one {k} step")
        names = [s.name for s in self.steps_of("student")]
        if len(set(names)) < len(names):
            raise ValueError(f"student names must differ (got {names})")
        if "train" in kinds and not self.data:
            raise ValueError("data is required to train a teacher (set it in the recipe or with --set data=PATH)")
        if "distill" in kinds and not self.data:
            raise ValueError("data is required for distillation")
        return self

    def step(self, kind: str):
        return next((s for s in self.steps if s.type == kind), None)

    def steps_of(self, kind: str) -> list:
        return [s for s in self.steps if s.type == kind]


def _set_dotted(d: dict, key: str, value: Any) -> None:
    """Set ``d[a][b][0][c] = value`` for the key ``a.b.0.c`` (list items by index).

    Raises:
        ConfigError: an empty part, a non-integer or out-of-range index, or a part below a plain value.
    """
    parts = key.split(".")
    if not key or any(not p.strip() for p in parts):
        raise ConfigError(f"--set {key!r}: malformed key (expected dotted names, e.g. steps.0.epochs)")
    cur: Any = d
    for depth, p in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(cur, list):
            try:
                i = int(p)
            except ValueError:
                raise ConfigError(f"--set {key}: {where!r} must be a list index (0..{len(cur) - 1})") from None
            if not 0 <= i < len(cur):
                where_ = ".".join(parts[:depth])
                what = f"no step {i} (recipe has {len(cur)})" if where_ == "steps" else f"no item {i} at {where_} (it has {len(cur)})"
                raise ConfigError(f"--set {key}: {what}")
            if last:
                cur[i] = value
            else:
                cur = cur[i]
        elif isinstance(cur, dict):
            if last:
                cur[p] = value
            else:
                cur = cur.setdefault(p, {})
        else:
            raise ConfigError(f"--set {key}: {'.'.join(parts[:depth])!r} is a plain value ({cur!r}), not a mapping or list")


def load_recipe(path: str | Path | None = None, overrides: list[str] | None = None, raw: dict | None = None) -> Recipe:
    """Read and validate a recipe; ``overrides`` are ``key=value`` (dotted keys, YAML values), e.g. ``data=../x``, ``steps.0.epochs=2``.

    Raises:
        ConfigError: naming the file, line and field of the first problem.
    """
    import yaml

    from edgegen.config_io import read_yaml, validation_message

    if raw is None:
        data, lines = read_yaml(path)
    else:
        data, lines = dict(raw), {}
    for ov in overrides or []:
        if "=" not in ov:
            raise ConfigError(f"--set expects key=value, got {ov!r}")
        k, v = ov.split("=", 1)
        try:
            value = yaml.safe_load(v) if v.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {k.strip()}: value {v!r} is not valid YAML ({' '.join(str(e).split())[:120]})") from None
        _set_dotted(data, k.strip(), value)
    steps = data.get("steps")
    if isinstance(steps, list):
        for i, s in enumerate(steps):
            if isinstance(s, dict) and s.get("type") not in STEP_TYPES:
                raise ConfigError(f"steps.{i}.type: unknown step type {s.get('type')!r} (known: {', '.join(STEP_TYPES)})",
                                  path=path, line=lines.get("steps"))
    try:
        r = Recipe.model_validate(data)
    except ValidationError as e:
        loc, msg = validation_message(e)
        parts = loc.split(".")
        # drop pydantic's union tag from the location: steps.2.prune.targets -> steps.2.targets
        if len(parts) > 2 and parts[0] == "steps" and parts[2] in STEP_TYPES:
            parts.pop(2)
        loc = ".".join(parts)
        where = "" if loc == "(root)" else f"{loc}: "
        raise ConfigError(f"{where}{msg}", path=path, line=lines.get(parts[0])) from None
    if r.data and not r.data.startswith("synthetic:") and not Path(r.data).exists():
        raise ConfigError(f"data: no such folder {r.data!r}", path=path, line=lines.get("data"))
    lp = r.step("load")
    if lp is not None and not Path(lp.path).exists():
        raise ConfigError(f"steps.0.path: no such model {lp.path!r}", path=path, line=lines.get("steps"))
    return r


# ----------------------------------------------------------------------------- running
def _hash(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def data_fingerprint(spec: str | None) -> str:
    if not spec:
        return "none"
    if spec.startswith("synthetic:"):
        return spec
    from edgegen.io import sha256_file

    d = Path(spec)
    files = sorted(p for p in d.iterdir() if p.is_file() and p.name.split(".")[0] in ("train", "dev", "test"))
    return _hash({p.name: sha256_file(p) for p in files})


# fields added after a stage kind existed, with their defaults: left out of the stage key while at the
# default, so that runs cached before the field existed are still reused
_LATER_FIELDS = {"merge_tokens": (1, None), "augment": (0,), "mutation_rate": (0.05,), "device": ("auto",), "allow_chance": (False,), "unlabeled": (None,)}


def _dump(step: BaseModel) -> dict:
    d = {k: v for k, v in step.model_dump().items() if not (k in _LATER_FIELDS and v in _LATER_FIELDS[k])}
    if isinstance(step, TrainConfig) and d.get("k") is None:
        d["k"] = step.kmer_size()  # k became optional (default by tokenizer): keys keep the k actually used
    return d


class Stage:
    def __init__(self, name: str, key: str, kind: str):
        self.name, self.key, self.kind = name, key, kind


# bumped when exported graphs change (2: CLS-row-only last layer, additive mask; 3: TokenMerge as a sum of
# slices), so cached exports are redone
EXPORT_GRAPH_VERSION = 3


def plan(r: Recipe) -> list[Stage]:
    """The stages a recipe resolves to, each keyed by the hash of its config and upstream keys."""
    dfp = data_fingerprint(r.data)
    t = r.steps[0]
    stages = [Stage("teacher", _hash("teacher", _dump(t), dfp, r.seed), "teacher")]
    teacher_key = stages[0].key
    branches: list[Stage] = []
    p = r.step("prune")
    if p:
        for tgt in p.targets:
            st = Stage(f"prune-{p.metric}{int(round(tgt * 100))}", _hash("prune", p.config(tgt).model_dump(), teacher_key, dfp), "prune")
            st.config = p.config(tgt)
            stages.append(st)
            branches.append(st)
    for s in r.steps_of("student"):
        st = Stage(f"student-{s.name}", _hash("student", _dump(s), teacher_key), "student")
        st.step = s
        stages.append(st)
        branches.append(st)
    d = r.step("distill")
    finals = []
    if d:
        for b in branches:
            st = Stage(f"distill-{b.name.split('-', 1)[1]}", _hash("distill", _dump(d), b.key, teacher_key, dfp), "distill")
            st.src = b
            stages.append(st)
            finals.append(st)
    else:
        finals = [b for b in branches if b.kind == "prune"]
    exports = []
    for e in r.steps_of("export"):
        srcs = finals + ([stages[0]] if e.include_teacher or not finals else [])
        for src in srcs:
            for fmt in e.formats:
                for q in e.quant:
                    tag = f"{src.name}.{q}.{fmt}"
                    st = Stage(f"export-{tag}", _hash("export", EXPORT_GRAPH_VERSION, e.model_dump(), fmt, q, src.key, dfp), "export")
                    st.src, st.fmt, st.quant, st.step = src, fmt, q, e
                    stages.append(st)
                    exports.append(st)
    b = r.step("bench")
    if b:
        models = [stages[0]] + finals + exports
        stages.append(Stage("bench", _hash("bench", b.model_dump(), [m.key for m in models], dfp), "bench"))
    for st in finals:
        st.final = True
    return stages


def _stage_done(run_dir: Path, st: Stage) -> bool:
    f = run_dir / st.name / "stage.json"
    if not f.exists():
        return False
    try:
        return json.loads(f.read_text()).get("key") == st.key
    except (json.JSONDecodeError, OSError):
        return False


def dry_run(r: Recipe) -> list[dict]:
    out = Path(r.out)
    return [{"stage": s.name, "key": s.key, "cached": _stage_done(out, s)} for s in plan(r)]


def _model_path(run_dir: Path, st: Stage) -> Path:
    if st.kind == "export":
        return run_dir / st.name / st.name[len("export-"):]
    return run_dir / st.name / "model"


def run_recipe(r: Recipe, *, show_progress: bool = True, on_stage=None) -> dict:
    """Execute a recipe; return ``summary`` (also written to ``RUN_DIR/report/summary.json``).

    ``on_stage(name, status)`` is called with ``cached``, ``running`` and ``done``.
    """
    from edgegen.api import load_data
    from edgegen.io import staging_dir, write_json

    import shutil

    run_dir = Path(r.out)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"out: {run_dir} is a file; a run writes a folder there")
    from edgegen.io import check_output

    check_output(run_dir / "stage", True)  # a parent that is a file is refused here, with its name
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.glob(".*.tmp"):  # half-built stages of a crashed run: never used, safe to drop
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    stages = plan(r)
    for st in stages:  # every stage folder lies directly inside the run folder
        if (run_dir / st.name).resolve().parent != run_dir.resolve():
            raise ConfigError(f"stage name {st.name!r} would write outside {run_dir}")
    by_name = {s.name: s for s in stages}
    splits = None

    def get_splits():
        nonlocal splits
        if splits is None and r.data:
            splits = load_data(r.data)
        return splits

    timings = {}
    for st in stages:
        if _stage_done(run_dir, st):
            if on_stage:
                on_stage(st.name, "cached")
            continue
        if on_stage:
            on_stage(st.name, "running")
        t0 = time.perf_counter()
        with staging_dir(run_dir / st.name, force=True) as tmp:
            info = _run_stage(r, st, tmp, run_dir, by_name, get_splits, show_progress)
            write_json(tmp / "stage.json", {"stage": st.name, "key": st.key, "kind": st.kind, "seconds": time.perf_counter() - t0,
                                            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(info or {})})
        timings[st.name] = time.perf_counter() - t0
        if on_stage:
            on_stage(st.name, "done")
    summary = _summary(r, run_dir, stages)
    if summary:
        write_json(run_dir / "report" / "summary.json", summary)
    return summary


def _run_stage(r: Recipe, st: Stage, tmp: Path, run_dir: Path, by_name: dict, get_splits, show_progress: bool) -> dict:
    from edgegen.checkpoint import load_model, save_model

    if st.kind == "teacher":
        t = r.steps[0]
        if t.type == "load":
            if t.hf:
                from edgegen.hf import import_hf

                import_hf(t.path, tmp / "model")
            else:
                lm = load_model(t.path)
                save_model(lm.model, lm.tokenizer, tmp / "model", metrics=lm.manifest.get("metrics"), dataset=lm.manifest.get("dataset"))
            return {"source": t.path}
        from edgegen.api import train_teacher

        cfg = TrainConfig(**{k: v for k, v in t.model_dump().items() if k != "type"})
        res = train_teacher(r.data, tmp / "model", cfg, show_progress=show_progress)
        return {"test": _brief(res["test"])}
    if st.kind == "prune":
        from edgegen.api import prune_model

        rep = prune_model(run_dir / "teacher" / "model", tmp / "model", st.config, data=r.data)
        return {"params_ratio": rep["params_ratio"], "macs_ratio": rep["macs_ratio"], "after": rep["after"]}
    if st.kind == "student":
        from edgegen.distill import student_from_teacher

        s = st.step
        t = load_model(run_dir / "teacher" / "model")
        m = student_from_teacher(t.model, **s.shape(), seed=r.seed)
        save_model(m, t.tokenizer, tmp / "model")
        return {"params": sum(x.numel() for x in m.parameters())}
    if st.kind == "distill":
        from edgegen.api import distill_model

        d = r.step("distill")
        src = st.src
        cfg = DistillConfig(**{k: v for k, v in d.model_dump().items() if k not in ("type", "unlabeled")})
        store = None
        if cfg.cache_teacher and not (cfg.hidden_weight or cfg.attn_weight):
            key = _hash(by_name["teacher"].key, cfg.augment, cfg.mutation_rate, cfg.seed, d.unlabeled)
            store = run_dir / f"teacher-logits-{key[:12]}"
        res = distill_model(run_dir / "teacher" / "model", run_dir / src.name / "model", r.data, tmp / "model", cfg,
                            unlabeled=d.unlabeled, teacher_logits=store, show_progress=show_progress)
        return {"test": _brief(res.get("test")), "teacher_test": _brief(res.get("teacher_test"))}
    if st.kind == "export":
        from edgegen.export import export

        e = st.step
        splits = get_splits()
        cfg = ExportConfig(format=st.fmt, quant=st.quant, max_drop=e.max_drop if st.quant != "none" else None, calib_samples=e.calib_samples)
        calib = splits["train"] if splits else None
        verify = splits.get("dev", splits.get("test")) if splits else None
        if verify is None or cfg.max_drop is None or calib is None:
            cfg = cfg.model_copy(update={"max_drop": None})
        out = tmp / st.name[len("export-"):]
        export(_model_path(run_dir, st.src), out, cfg, calib=calib, verify=verify)
        side = json.loads(Path(str(out) + ".json").read_text())
        return {"verification": {k: v for k, v in side["verification"].items() if k != "search_log"}, "kept_float": side.get("kept_float")}
    if st.kind == "bench":
        from edgegen.bench import BenchConfig, bench
        from edgegen.report import write_report

        b = r.step("bench")
        splits = get_splits()
        models = [run_dir / "teacher" / "model"]
        models += [_model_path(run_dir, s) for s in by_name.values() if getattr(s, "final", False)]
        models += [_model_path(run_dir, s) for s in by_name.values() if s.kind == "export"]
        data = splits["test"] if splits and "test" in splits else None
        if data is None:
            raise UsageError("bench needs a test split in the recipe's data")
        res = bench(models, data, b.device, BenchConfig(runs=b.runs, warmup=b.warmup, threads=b.threads, max_samples=b.max_samples,
                                                        validity=b.validity), show_progress=show_progress)
        if r.data and not r.data.startswith("synthetic:"):
            from edgegen.data.checks import data_report

            res["data_check"] = data_report(get_splits())
        write_report(res, tmp)
        return {"models": len(models), "errors": res["errors"]}
    raise AssertionError(st.kind)


def _brief(rep: dict | None) -> dict | None:
    if not rep:
        return None
    return {k: rep[k]["value"] for k in ("accuracy", "mcc", "f1", "auroc") if k in rep}


def _summary(r: Recipe, run_dir: Path, stages: list[Stage]) -> dict | None:
    """Teacher vs best compressed model, from the bench results."""
    bj = run_dir / "bench" / "bench.json"
    if not bj.exists():
        return None
    import shutil

    res = json.loads(bj.read_text())
    rep_dir = run_dir / "report"
    rep_dir.mkdir(exist_ok=True)
    for f in (run_dir / "bench").iterdir():
        if f.suffix in (".md", ".png", ".json") and f.name != "stage.json":
            shutil.copy2(f, rep_dir / f.name)
    from edgegen.report import rows

    rs = [x for x in rows(res) if not x["error"]]
    teacher = rs[0]
    t1 = str(res["methodology"]["threads"][0])
    cands = [x for x in rs[1:]]
    summary = {"recipe": r.name, "run_dir": str(run_dir), "teacher": teacher["name"], "models": []}
    for x in cands:
        summary["models"].append({
            "name": x["name"], "backend": x["backend"], "quant": x["quant"], "accuracy": x["acc"], "mcc": x["mcc"],
            "accuracy_delta_pp": 100 * (x["acc"] - teacher["acc"]), "mcc_delta": x["mcc"] - teacher["mcc"],
            "mcc_delta_ci": x["d_mcc_ci"], "size_bytes": x["size"], "size_ratio": x["size_ratio"],
            "latency_ratio_t1": x.get(f"speedup_t{t1}"), "p50_ms_t1": x.get(f"p50_t{t1}"),
            "rc_consistency": x.get("rc"),
        })
    ok = [m for m in summary["models"] if m["accuracy_delta_pp"] >= -1.0]
    if ok:
        best = max(ok, key=lambda m: (m["latency_ratio_t1"] or 0))
        summary["best"] = best
    summary["teacher_metrics"] = {"accuracy": teacher["acc"], "mcc": teacher["mcc"], "size_bytes": teacher["size"], "p50_ms_t1": teacher.get(f"p50_t{t1}")}
    summary["report"] = str(rep_dir / "report.md")
    return summary
