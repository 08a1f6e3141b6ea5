"""Signed bundles: Ed25519 over a coreutils ``SHA256SUMS`` of every file, so anyone can check one with standard tools.

A signed bundle holds ``SHA256SUMS`` (``<sha256>  <path>`` for every file of the bundle, ``MANIFEST.json`` and the
wheels included, sorted) and ``SHA256SUMS.sig``, the raw 64-byte Ed25519 signature of ``SHA256SUMS``'s bytes. A
third party needs neither edgegen nor Python::

    openssl pkeyutl -verify -pubin -inkey edgegen-signing.pub -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig
    sha256sum --check --strict SHA256SUMS

Keys are PEM files (PKCS#8 private key, mode 0600; SubjectPublicKeyInfo public key) made by ``edgegen keys new``.
Verification (:func:`verify_signed_bundle`) needs no network: the signature against a public key, then every listed
path confined to the bundle and its hash, then no file that the list leaves out. Device-side: the standard library
and ``cryptography`` only.
"""

from __future__ import annotations

import hashlib
import os
import re

from edgegen.errors import EdgegenError
from edgegen.io import sha256_file as _sha256

SUMS = "SHA256SUMS"
SIG = "SHA256SUMS.sig"
PRIVATE_KEY = "edgegen-signing.key"
PUBLIC_KEY = "edgegen-signing.pub"
UNSIGNED = (SUMS, SIG)  # the only files of a signed bundle its list does not name
_LINE = re.compile(r"^([0-9a-f]{64})  (.+)$")


class SignatureError(EdgegenError):
    """A signed bundle that does not verify: ``str(e)`` is one line naming the file and what differs."""

    def __init__(self, path: str, message: str):
        super().__init__(message, path=path)
        self.reason = message


def new_keys(out_dir: str, *, force: bool = False) -> tuple[str, str]:
    """Write a new Ed25519 key pair to ``out_dir``; returns (private key file, public key file). The private key is
    created readable by its owner only (mode 0600, never briefly wider); an existing key is kept unless ``force``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    os.makedirs(out_dir, exist_ok=True)
    priv_path, pub_path = os.path.join(out_dir, PRIVATE_KEY), os.path.join(out_dir, PUBLIC_KEY)
    for p in (priv_path, pub_path):
        if os.path.lexists(p) and not force:
            raise FileExistsError(p)
    key = Ed25519PrivateKey.generate()
    priv = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for path, data, mode in ((priv_path, priv, 0o600), (pub_path, pub, 0o644)):
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    return priv_path, pub_path


def load_public_key(pem: bytes, where: str):
    """An Ed25519 public key from PEM bytes; SignatureError naming ``where`` otherwise."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError) as e:
        raise SignatureError(where, f"not a PEM public key ({' '.join(str(e).split())[:40]}…)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(where, "not an Ed25519 public key (make one with edgegen keys new)")
    return key


def key_id(pem: bytes, where: str = "public key") -> str:
    """A short fingerprint of a public key: the sha256 of its DER encoding, 16 hex digits."""
    from cryptography.hazmat.primitives import serialization

    der = load_public_key(pem, where).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


def bundle_files(folder: str) -> list[str]:
    """Every regular file of a bundle, relative and sorted, but the signature's own two files. A link is refused."""
    root = os.path.realpath(folder)
    out = []
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(d, name)
            rel = os.path.relpath(full, root)
            if os.path.islink(full):
                raise SignatureError(os.path.join(folder, rel), "a link in a bundle (a signed bundle holds files only)")
        for name in files:
            rel = os.path.relpath(os.path.join(d, name), root)
            if rel not in UNSIGNED:
                out.append(rel.replace(os.sep, "/"))
    return sorted(out)


def sign_bundle(folder: str, private_key_file: str) -> str:
    """Write ``SHA256SUMS`` (every file of ``folder``) and its Ed25519 signature ``SHA256SUMS.sig``; returns the
    signer's key id."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        with open(private_key_file, "rb") as fh:
            key = load_pem_private_key(fh.read(), password=None)
    except (ValueError, TypeError) as e:
        raise SignatureError(private_key_file, f"not an unencrypted PEM private key ({str(e)[:80]})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(private_key_file, "not an Ed25519 private key (make one with edgegen keys new)")
    for rel in bundle_files(folder):
        if any(ord(c) < 32 for c in rel) or "\\" in rel:
            raise SignatureError(os.path.join(folder, rel), "a file name sha256sum cannot list")
    sums = "".join(f"{_sha256(os.path.join(folder, rel))}  {rel}\n" for rel in bundle_files(folder)).encode()
    with open(os.path.join(folder, SUMS), "wb") as fh:
        fh.write(sums)
    with open(os.path.join(folder, SIG), "wb") as fh:
        fh.write(key.sign(sums))
    from cryptography.hazmat.primitives import serialization

    pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key_id(pub)


def is_signed(folder: str) -> bool:
    return os.path.exists(os.path.join(folder, SUMS)) or os.path.exists(os.path.join(folder, SIG))


def verify_signed_bundle(folder: str, public_key_pem: bytes, key_where: str = "public key") -> dict[str, str]:
    """Check a signed bundle: the signature of ``SHA256SUMS`` by ``public_key_pem``, every listed path inside the
    bundle with its sha256, and no file the list leaves out. Returns {path: sha256}.

    Raises:
        SignatureError: naming the file and what differs (no signature, another key, a changed, missing,
            outside or unlisted file).
    """
    from cryptography.exceptions import InvalidSignature

    root = os.path.realpath(folder)
    sums_path, sig_path = os.path.join(root, SUMS), os.path.join(root, SIG)
    for p in (sums_path, sig_path):
        if not os.path.isfile(p):
            raise SignatureError(p, "missing: the bundle is not signed (edgegen bundle … --sign KEY)")
    with open(sums_path, "rb") as fh:
        sums = fh.read()
    with open(sig_path, "rb") as fh:
        sig = fh.read()
    try:
        load_public_key(public_key_pem, key_where).verify(sig, sums)
    except InvalidSignature:
        raise SignatureError(
            sig_path,
            f"the signature does not match {SUMS} under the trusted key "
            f"{key_id(public_key_pem)} (signed by another key, or the list was changed)",
        ) from None
    listed: dict[str, str] = {}
    for n, line in enumerate(sums.decode("utf-8", "replace").splitlines(), 1):
        m = _LINE.match(line)
        if not m:
            raise SignatureError(sums_path, f"line {n} is not '<sha256>  <path>'")
        digest, rel = m.groups()
        full = os.path.realpath(os.path.join(root, rel))
        if os.path.isabs(rel) or not full.startswith(root + os.sep) or rel in UNSIGNED:
            raise SignatureError(sums_path, f"line {n} lists {rel!r}, which is not a file inside the bundle")
        if not os.path.isfile(full):
            raise SignatureError(os.path.join(folder, rel), "listed in the signed SHA256SUMS but missing")
        got = _sha256(full)
        if got != digest:
            raise SignatureError(
                os.path.join(folder, rel), f"changed since it was signed (sha256 {got[:12]}…, signed {digest[:12]}…)"
            )
        listed[rel] = digest
    for rel in bundle_files(folder):
        if rel not in listed:
            raise SignatureError(os.path.join(folder, rel), "not in the signed SHA256SUMS (an unsigned extra file)")
    return listed
