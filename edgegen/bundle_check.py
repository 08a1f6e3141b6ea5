"""Check a bundle folder against its ``MANIFEST.json``, with the standard library alone.

Every file the manifest lists is checked against its sha256, each listed name must stay inside the bundle, and a
file the manifest does not list is refused where code or models live (``lib/``, ``wheels/``, and ``.py``/``.so``/
model/input/JSON/Markdown files at the top: the model card too). A bundle's ``runner.py`` is this file's source
between a header that takes the bundle folder off ``sys.path`` and a ``main`` that runs edgegen's runner once the
check passed (``bundle.runner_script``), so nothing of the bundle is imported before it is verified. On the host,
``bench --device`` runs the same check before it copies a bundle. Needs Python 3.8+, nothing else.
"""

import hashlib
import json
import os

MANIFEST = "MANIFEST.json"
FORMAT = "edgegen-bundle/1"
SKIPPED = ("venv",)  # made on the device by install.sh from verified wheels
CHECKED_DIRS = ("lib", "wheels")  # every file below these must be listed
CHECKED_SUFFIXES = (
    ".py",
    ".pyc",
    ".so",
    ".pth",
    ".onnx",
    ".data",
    ".tflite",
    ".npz",
    ".whl",
    ".sh",
    ".txt",
    ".json",
    ".md",
)
OUTPUTS = ("result",)  # result*.json: what runner.py measure writes beside the model (the manifest's own command)


class BundleError(Exception):
    """The bundle differs from its manifest: ``str(e)`` is one line naming the file."""

    def __init__(self, path: str, message: str):
        shown = "".join(c if ord(c) >= 32 else repr(c)[1:-1] for c in path)  # a newline in a file name stays one line
        super().__init__(f"{shown}: {message}")
        self.path, self.reason = path, message


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 20)
            if not block:
                return h.hexdigest()
            h.update(block)


def _inside(root: str, name: object, man: str) -> str:
    if (
        not isinstance(name, str)
        or not name
        or any(ord(c) < 32 for c in name)
        or os.path.isabs(name)
        or name.startswith("~")
    ):
        raise BundleError(man, f"lists {name!r}, which is not a relative file name inside the bundle")
    full = os.path.realpath(os.path.join(root, name))
    if not full.startswith(root + os.sep):
        raise BundleError(man, f"lists {name!r}, which points outside the bundle")
    return full


def verify_bundle(folder: str) -> dict:
    """Check a bundle folder against its manifest; returns the manifest.

    Raises:
        BundleError: no or unreadable manifest; a listed file missing, outside the bundle, or with another sha256
            (named, with both hashes' starts); an unlisted file where code or models live.
    """
    root = os.path.realpath(folder)
    man = os.path.join(root, MANIFEST)
    try:
        with open(man, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except FileNotFoundError:
        raise BundleError(man, "missing: not an edgegen bundle, or its manifest was removed") from None
    except (OSError, ValueError) as e:
        raise BundleError(man, f"unreadable bundle manifest ({type(e).__name__})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(files, dict) or not files:
        raise BundleError(man, f"not an {FORMAT} manifest with a 'files' table")
    listed = set()
    for name, want in sorted(files.items()):
        full = _inside(root, name, man)
        listed.add(full)
        if not isinstance(want, str) or len(want) != 64:
            raise BundleError(man, f"records no valid sha256 for {name}")
        if not os.path.isfile(full):
            raise BundleError(full, "missing from the bundle (the manifest lists it)")
        got = _sha256(full)
        if got != want:
            raise BundleError(
                full,
                f"differs from the bundle manifest (sha256 {got[:12]}… is not {want[:12]}…): "
                "replaced or corrupted after bundling; make the bundle again",
            )
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d not in SKIPPED]
        top = rel_dir.split(os.sep)[0]
        for f in filenames:
            full = os.path.join(dirpath, f)
            if full in listed or f == MANIFEST and rel_dir == ".":
                continue
            output = rel_dir == "." and f.startswith(OUTPUTS) and f.endswith(".json")
            if top in CHECKED_DIRS or (rel_dir == "." and f.endswith(CHECKED_SUFFIXES) and not output):
                raise BundleError(
                    full, "is not listed in the bundle manifest: refusing a bundle with files added after bundling"
                )
    return manifest
