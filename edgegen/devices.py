"""Device profiles: ``devices/*.yaml`` (one per target) or a user's own YAML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgegen.errors import ConfigError, UsageError

Runtime = Literal["tflite", "onnxruntime", "torch"]


class SSHConfig(BaseModel):
    """How to reach a device with the system ``ssh``/``scp`` (so keys, ~/.ssh/config and host-key checks apply)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(description="host name, address, or a Host entry of ~/.ssh/config")
    user: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    identity_file: str | None = None
    config_file: str | None = Field(None, description="ssh -F file instead of ~/.ssh/config")
    options: list[str] = Field(default_factory=list, description="extra -o options, e.g. UserKnownHostsFile=...")
    remote_dir: str = "/tmp/edgegen-bench"
    connect_timeout_s: int = Field(10, ge=1)
    timeout_s: int = Field(900, ge=1, description="limit for one remote measurement")

    def target(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def base_args(self, scp: bool = False) -> list[str]:
        a = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout_s}"]
        if self.port:
            a += ["-P" if scp else "-p", str(self.port)]
        if self.identity_file:
            a += ["-i", os.path.expanduser(self.identity_file)]
        if self.config_file:
            a += ["-F", os.path.expanduser(self.config_file)]
        for o in self.options:
            a += ["-o", o]
        return a


class BenchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup: int = Field(10, ge=0)
    runs: int = Field(100, ge=5)
    batch: int = Field(64, ge=1)


class DeviceProfile(BaseModel):
    """A target: which runtimes to use, threads, Python, and how to reach it (``ssh`` absent = this machine)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    runtimes: list[Runtime] = Field(default_factory=lambda: ["onnxruntime", "tflite", "torch"])
    onnx_providers: list[str] = Field(default_factory=lambda: ["CPUExecutionProvider"])
    tflite_quant: Literal["int8", "int8-full", "16x8", "dynamic", "none"] = Field("int8", description="TFLite mode to export for this device")
    onnx_quant: Literal["int8", "int8-full", "dynamic", "fp16", "none"] = "int8"
    threads: list[int] | None = Field(None, description="thread counts to time; default [1, all cores]")
    python: str = "python3"
    emulated: bool = Field(False, description="the device's Python runs under an emulator (qemu-user): its outputs give "
                           "accuracy and agreement, and no timings are taken (under emulation they mean nothing)")
    ssh: SSHConfig | None = None
    bench: BenchSettings = Field(default_factory=BenchSettings)

    @model_validator(mode="after")
    def _check(self) -> "DeviceProfile":
        if not self.runtimes:
            raise ValueError("runtimes must name at least one of tflite, onnxruntime, torch")
        if self.threads is not None and any(t < 1 for t in self.threads):
            raise ValueError("threads must be >= 1")
        return self

    def require_runtime(self, runtime: str, model) -> None:
        """Refuse ``model`` (a UsageError naming it) when this device does not run ``runtime``."""
        if runtime not in self.runtimes:
            raise UsageError(f"device {self.name} runs {self.runtimes}, not {runtime}", path=model)

    @property
    def is_remote(self) -> bool:
        return self.ssh is not None

    def thread_counts(self) -> list[int]:
        if self.threads:
            return list(self.threads)
        n = os.cpu_count() or 1
        return [1] if n == 1 else [1, n]


def device_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    dirs = [Path.cwd() / "devices", here.parent / "devices", here / "devices", Path.home() / ".config" / "edgegen" / "devices"]
    out = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in [x.resolve() for x in out]:
            out.append(d)
    return out


def list_devices() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in device_dirs():
        for f in sorted(d.glob("*.yaml")):
            found.setdefault(f.stem, f)
    return found


def load_device(name_or_path: str | Path | None = None) -> DeviceProfile:
    """Load a profile by name (``devices/NAME.yaml``) or path; default: the local CPU."""
    from edgegen.config_io import load_config

    if name_or_path is None:
        name_or_path = "local"
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return load_config(DeviceProfile, p)
    known = list_devices()
    if str(name_or_path) not in known:
        if str(name_or_path) == "local":
            return DeviceProfile(name="local", description="this machine (built-in default)")
        raise ConfigError(f"unknown device {name_or_path!r}; known: {', '.join(sorted(known)) or 'none'} (or pass a YAML path)")
    return load_config(DeviceProfile, known[str(name_or_path)])
