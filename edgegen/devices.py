"""Device profiles: ``devices/*.yaml`` (one per target) or a user's own YAML file."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgegen.errors import ConfigError, UsageError
from edgegen.export.quant_modes import OnnxQuant, TfliteQuant

Runtime = Literal["tflite", "onnxruntime", "torch"]


# A profile may come from anyone: none of its text may become an ssh option or shell code. Names are plain words
# (never starting with "-"), every value goes to ssh after the option it belongs to or after "--", and extra -o options
# are limited to settings that run no command (no ProxyCommand, LocalCommand, KnownHostsCommand, Match exec).
HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:%-]*")
USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
WORD = re.compile(r"[A-Za-z0-9_./~+=:@%,-]+")  # a path or an interpreter's word, quoted on the device anyway
SAFE_SSH_OPTIONS = frozenset(
    o.lower()
    for o in (
        "UserKnownHostsFile",
        "GlobalKnownHostsFile",
        "StrictHostKeyChecking",
        "IdentitiesOnly",
        "ServerAliveInterval",
        "ServerAliveCountMax",
        "ConnectionAttempts",
        "Compression",
        "HostKeyAlias",
        "HostKeyAlgorithms",
        "LogLevel",
        "PubkeyAuthentication",
        "PasswordAuthentication",
        "PreferredAuthentications",
        "CheckHostIP",
        "AddressFamily",
        "Ciphers",
        "MACs",
        "KexAlgorithms",
        "PubkeyAcceptedAlgorithms",
        "PubkeyAcceptedKeyTypes",
        "UpdateHostKeys",
        "HashKnownHosts",
        "TCPKeepAlive",
        "IPQoS",
        "RekeyLimit",
        "VerifyHostKeyDNS",
    )
)


def _plain(value: str | None, pattern: re.Pattern, what: str) -> str | None:
    if value is not None and not pattern.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} is not allowed: it has a character outside {pattern.pattern} or starts with "
            "'-' (profile text never becomes an ssh option or shell code)"
        )
    return value


def _path_word(value: str | None, what: str) -> str | None:
    _plain(value, WORD, what)
    if value is not None and value.startswith("-"):
        raise ValueError(f"{what} {value!r} may not start with '-' (it would be read as an option)")
    return value


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

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        return _plain(v, HOST, "host")

    @field_validator("user")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        return _plain(v, USER, "user")

    @field_validator("identity_file", "config_file")
    @classmethod
    def _file(cls, v: str | None, info) -> str | None:
        return _path_word(v, info.field_name)

    @field_validator("remote_dir")
    @classmethod
    def _remote_dir(cls, v: str) -> str:
        _path_word(v, "remote_dir")
        parts = [p for p in v.split("/") if p]
        if not parts or ".." in parts or v.rstrip("/") in ("~", "."):
            raise ValueError(
                f"remote_dir {v!r} must name a folder below / or ~ (its bundles are replaced there), without '..'"
            )
        return v

    @field_validator("options")
    @classmethod
    def _options(cls, v: list[str]) -> list[str]:
        for o in v:
            key, eq, val = o.partition("=")
            if not eq or key.strip().lower() not in SAFE_SSH_OPTIONS or not WORD.fullmatch(val) or val.startswith("-"):
                raise ValueError(
                    f"ssh option {o!r} is not allowed: options are KEY=VALUE with KEY one of "
                    "UserKnownHostsFile, StrictHostKeyChecking, IdentitiesOnly, ServerAlive*, … (settings that "
                    "run no command; put anything else in an ssh config file given as config_file)"
                )
        return v

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
    tflite_quant: TfliteQuant = Field("int8", description="TFLite mode to export for this device")
    onnx_quant: OnnxQuant = "int8"
    threads: list[int] | None = Field(None, description="thread counts to time; default [1, all cores]")
    python: str = "python3"
    emulated: bool = Field(
        False,
        description="the device's Python runs under an emulator (qemu-user): its outputs give "
        "accuracy and agreement, and no timings are taken (under emulation they mean nothing)",
    )
    ssh: SSHConfig | None = None
    deploy_dir: str | None = Field(
        None,
        description="where releases live (edgegen deploy): on the device over ssh, or with no ssh a folder on this "
        "machine (a mounted SD card)",
    )
    watch_out: str | None = Field(None, description="where runner.py watch writes on the device (edgegen monitor)")
    keep_releases: int = Field(3, ge=2, description="releases kept on the device (the rollback target never goes)")
    max_p50_ms: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="health check: the batch-1 median latency a release must meet"
    )
    bench: BenchSettings = Field(default_factory=BenchSettings)

    @field_validator("python")
    @classmethod
    def _python(cls, v: str) -> str:
        words = shlex.split(v) if v.strip() else []
        if not words:
            raise ValueError("python must name the device's interpreter")
        _path_word(words[0], "python")
        for w in words[1:]:
            _plain(w, WORD, "python")
        return v

    def python_words(self) -> list[str]:
        """The interpreter's command line, each word to be quoted for the device's shell."""
        return shlex.split(self.python)

    @field_validator("deploy_dir", "watch_out")
    @classmethod
    def _deploy_dir(cls, v: str | None, info) -> str | None:
        if v is None:
            return v
        _path_word(v, info.field_name)
        parts = [p for p in v.split("/") if p]
        if not parts or ".." in parts or v.rstrip("/") in ("~", "."):
            raise ValueError(f"{info.field_name} {v!r} must name a folder of its own, without '..'")
        return v

    @model_validator(mode="after")
    def _check(self) -> "DeviceProfile":
        if not self.runtimes:
            raise ValueError("runtimes must name at least one of tflite, onnxruntime, torch")
        if self.threads is not None and any(t < 1 for t in self.threads):
            raise ValueError("threads must be >= 1")
        if self.ssh is not None and self.deploy_dir and not self.deploy_dir.startswith("/"):
            raise ValueError(f"deploy_dir {self.deploy_dir!r} must be absolute on an ssh device (quoted: no ~)")
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
    dirs = [
        Path.cwd() / "devices",
        here.parent / "devices",
        here / "devices",
        Path.home() / ".config" / "edgegen" / "devices",
    ]
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
        raise ConfigError(
            f"unknown device {name_or_path!r}; known: {', '.join(sorted(known)) or 'none'} (or pass a YAML path)"
        )
    return load_config(DeviceProfile, known[str(name_or_path)])
