#!/usr/bin/python3
"""DPS-side TPM crypto: the activation blob of docs/protocol.md §6.6 and the TPM
registration id of §6.2.

This is a software implementation (python3-cryptography), independent of the
C client's tpm2-tss code, so that the two can check each other.

Public functions:
  build_activation_blob(ek_tpm2b, srk_tpm2b, hmac_key, uri=b"") -> bytes
  registration_id_from_ek(ek_tpm2b) -> str
  rsa_tpm2b_public(modulus, template="ek"|"srk") -> bytes   (test helper)
  parse_rsa_public(tpm2b) -> (RSAPublicKey, name_bytes)
  kdfa(key, label, context_u, context_v, bits) -> bytes

CLI:
  dps_tpm.py blob --ek EK.pub --srk SRK.pub --key HEX [--uri TEXT] [--out F] [--b64]
  dps_tpm.py regid --ek EK.pub
EK.pub / SRK.pub are marshaled TPM2B_PUBLIC files (`tpm2_readpublic -o`), or
Base64 text of the same bytes.
"""

import argparse
import base64
import hashlib
import hmac
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# TPM algorithm ids and constants used below (TPM 2.0 Part 2).
ALG_RSA = 0x0001
ALG_KEYEDHASH = 0x0008
ALG_SHA256 = 0x000B
ALG_AES = 0x0006
ALG_CFB = 0x0043
ALG_NULL = 0x0010
ALG_HMAC = 0x0005

# Identity-key attributes: sign | userWithAuth | noDA (docs/protocol.md §6.6).
ID_KEY_ATTRIBUTES = 0x00040440
# PolicyCommandCode(TPM_CC_Duplicate): lets the key be duplicated; value from §6.6.
ID_KEY_AUTH_POLICY = bytes.fromhex(
    "bef56b8c1cc84e11edd717528d2cd99356bd2bbf8f015209c3f84aeeaba8e8a2")

# EK / SRK templates of the C SDK (docs/protocol.md §6.1), used only to build test keys.
EK_ATTRIBUTES = 0x000300B2
EK_AUTH_POLICY = bytes.fromhex(
    "837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa")
SRK_ATTRIBUTES = 0x00030472


def tpm2b(data):
    """Size-prefixed buffer: UINT16 big-endian length, then the bytes."""
    if len(data) > 0xFFFF:
        raise ValueError("TPM2B too large")
    return struct.pack(">H", len(data)) + data


def kdfa(key, label, context_u, context_v, bits):
    """KDFa with SHA-256 (SP 800-108 counter mode, TPM 2.0 Part 1 §11.4.10.2).

    The label is hashed with one terminating NUL, as the TPM does.
    """
    out = b""
    counter = 1
    while len(out) * 8 < bits:
        msg = (struct.pack(">I", counter) + label + b"\x00" + context_u +
               context_v + struct.pack(">I", bits))
        out += hmac.new(key, msg, hashlib.sha256).digest()
        counter += 1
    return out[: bits // 8]


def _aes_cfb(key, data, decrypt=False):
    # TPM uses full-block CFB with an all-zero IV for both wrappers.
    cipher = Cipher(algorithms.AES(key), modes.CFB(b"\x00" * 16))
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(data) + ctx.finalize()


def aes_cfb_encrypt(key, data):
    return _aes_cfb(key, data)


def aes_cfb_decrypt(key, data):
    return _aes_cfb(key, data, decrypt=True)


class _Reader:
    """Minimal cursor over TPM marshaled bytes."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated TPM structure")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def tpm2b(self):
        return self.take(self.u16())


def parse_rsa_public(tpm2b_public):
    """Parse a marshaled RSA TPM2B_PUBLIC.

    Returns (cryptography RSAPublicKey, TPM Name bytes). The Name is
    nameAlg || SHA-256(TPMT_PUBLIC) (docs/protocol.md §6.1); it binds MakeCredential
    and the outer wrapper to this exact object.
    """
    outer = _Reader(tpm2b_public)
    tpmt = outer.tpm2b()
    if outer.pos != len(tpm2b_public):
        raise ValueError("trailing bytes after TPM2B_PUBLIC")
    r = _Reader(tpmt)
    if r.u16() != ALG_RSA:
        raise ValueError("not an RSA key")
    name_alg = r.u16()
    if name_alg != ALG_SHA256:
        raise ValueError("only SHA-256 nameAlg is supported")
    r.u32()                      # objectAttributes
    r.tpm2b()                    # authPolicy
    if r.u16() != ALG_NULL:      # symmetric.algorithm
        r.u16()                  # keyBits
        r.u16()                  # mode
    if r.u16() != ALG_NULL:      # scheme
        r.u16()                  # scheme hash
    r.u16()                      # keyBits
    exponent = r.u32() or 65537
    modulus = int.from_bytes(r.tpm2b(), "big")
    key = rsa.RSAPublicNumbers(exponent, modulus).public_key()
    name = struct.pack(">H", name_alg) + hashlib.sha256(tpmt).digest()
    return key, name


def rsa_tpm2b_public(modulus, template="ek"):
    """Marshal an RSA-2048 TPM2B_PUBLIC with the C SDK's EK or SRK template.

    Used by tests (and handy for the C engineer) to fake an EK/SRK from a
    software RSA key; `modulus` is an int or 256 big-endian bytes.
    """
    if isinstance(modulus, int):
        modulus = modulus.to_bytes(256, "big")
    if template == "ek":
        attrs, policy = EK_ATTRIBUTES, EK_AUTH_POLICY
    elif template == "srk":
        attrs, policy = SRK_ATTRIBUTES, b""
    else:
        raise ValueError("template must be 'ek' or 'srk'")
    tpmt = (struct.pack(">HHI", ALG_RSA, ALG_SHA256, attrs) + tpm2b(policy) +
            struct.pack(">HHH", ALG_AES, 128, ALG_CFB) +
            struct.pack(">H", ALG_NULL) + struct.pack(">HI", 2048, 0) +
            tpm2b(modulus))
    return tpm2b(tpmt)


def registration_id_from_ek(ek_tpm2b):
    """Default TPM registration id (docs/protocol.md §6.2): lowercase Base32 of
    SHA-256 over the whole marshaled EK (size prefix included), no padding."""
    digest = hashlib.sha256(ek_tpm2b).digest()
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def _oaep(label):
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                        algorithm=hashes.SHA256(), label=label)


OAEP_IDENTITY = b"IDENTITY\x00"
OAEP_DUPLICATE = b"DUPLICATE\x00"


def identity_key_public(seed_value, hmac_key):
    """TPMT_PUBLIC of the keyed-hash identity key; `unique` must equal
    SHA-256(seedValue || key) or TPM2_Import fails with TPM_RC_BINDING."""
    unique = hashlib.sha256(seed_value + hmac_key).digest()
    return (struct.pack(">HHI", ALG_KEYEDHASH, ALG_SHA256, ID_KEY_ATTRIBUTES) +
            tpm2b(ID_KEY_AUTH_POLICY) +
            struct.pack(">HH", ALG_HMAC, ALG_SHA256) + tpm2b(unique))


def build_activation_blob(ek_tpm2b, srk_tpm2b, hmac_key, uri=b"",
                          rand=os.urandom):
    """Build the Base64-less `authenticationKey` blob of docs/protocol.md §6.4/§6.6.

    The device activates it with TPM2_ActivateCredential (EK + SRK) and
    TPM2_Import under the SRK, ending up with an HMAC key equal to `hmac_key`.
    `rand` is injectable so tests can make blobs deterministic.
    """
    ek_pub, _ek_name = parse_rsa_public(ek_tpm2b)
    srk_pub, srk_name = parse_rsa_public(srk_tpm2b)

    # Identity key public + sensitive areas.
    seed_value = rand(32)
    id_pub = identity_key_public(seed_value, hmac_key)
    id_name = struct.pack(">H", ALG_SHA256) + hashlib.sha256(id_pub).digest()
    sensitive = (struct.pack(">H", ALG_KEYEDHASH) + tpm2b(b"") +
                 tpm2b(seed_value) + tpm2b(hmac_key))
    sens2b = tpm2b(sensitive)

    # Inner wrapper: like TPM2_Duplicate with a caller-chosen 16-byte key
    # (the C SDK hardcodes AES-128 on Import, so 16 bytes exactly).
    inner_key = rand(16)
    inner_integrity = hashlib.sha256(sens2b + id_name).digest()
    enc_inner = aes_cfb_encrypt(inner_key, tpm2b(inner_integrity) + sens2b)

    # Outer wrapper, keyed by a seed only the SRK can decrypt.
    seed1 = rand(32)
    in_sym_seed = srk_pub.encrypt(seed1, _oaep(OAEP_DUPLICATE))
    sym_key1 = kdfa(seed1, b"STORAGE", id_name, b"", 128)
    dup_sens = aes_cfb_encrypt(sym_key1, enc_inner)
    hmac_key1 = kdfa(seed1, b"INTEGRITY", b"", b"", 256)
    outer_hmac = hmac.new(hmac_key1, dup_sens + id_name, hashlib.sha256).digest()
    duplicate = tpm2b(outer_hmac) + dup_sens

    # MakeCredential: the inner key, for the EK, bound to the SRK's Name.
    seed2 = rand(32)
    secret = ek_pub.encrypt(seed2, _oaep(OAEP_IDENTITY))
    sym_key2 = kdfa(seed2, b"STORAGE", srk_name, b"", 128)
    enc_identity = aes_cfb_encrypt(sym_key2, tpm2b(inner_key))
    hmac_key2 = kdfa(seed2, b"INTEGRITY", b"", b"", 256)
    id_hmac = hmac.new(hmac_key2, enc_identity + srk_name, hashlib.sha256).digest()
    id_object = tpm2b(id_hmac) + enc_identity

    enc_uri = aes_cfb_encrypt(inner_key, uri) if uri else b""
    return (tpm2b(id_object) + tpm2b(secret) + tpm2b(duplicate) +
            tpm2b(in_sym_seed) + tpm2b(id_pub) + tpm2b(enc_uri))


def split_activation_blob(blob):
    """Split a blob into its six TPM2B payloads (without size prefixes):
    (id_object, secret, duplicate, in_sym_seed, id_pub, enc_uri)."""
    r = _Reader(blob)
    parts = tuple(r.tpm2b() for _ in range(6))
    if r.pos != len(blob):
        raise ValueError("trailing bytes after activation blob")
    return parts


def _read_key_file(path):
    """Raw TPM2B_PUBLIC bytes, or Base64 text of them."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("ascii").strip()
        decoded = base64.b64decode(text, validate=True)
        parse_rsa_public(decoded)
        return decoded
    except Exception:       # not Base64 text: treat as raw bytes
        return data


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="dps_tpm.py",
        description="DPS TPM activation blob builder (docs/protocol.md §6.6).")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("blob", help="build an authenticationKey blob")
    b.add_argument("--ek", required=True, help="EK TPM2B_PUBLIC file (raw or Base64)")
    b.add_argument("--srk", required=True, help="SRK TPM2B_PUBLIC file (raw or Base64)")
    b.add_argument("--key", required=True, help="HMAC key to wrap, hex")
    b.add_argument("--uri", default="", help="optional text for item 6")
    b.add_argument("--out", help="write raw blob here (default: Base64 to stdout)")
    r = sub.add_parser("regid", help="print registration id of an EK")
    r.add_argument("--ek", required=True)
    args = ap.parse_args(argv)

    ek = _read_key_file(args.ek)
    if args.cmd == "regid":
        print(registration_id_from_ek(ek))
        return 0
    srk = _read_key_file(args.srk)
    blob = build_activation_blob(ek, srk, bytes.fromhex(args.key),
                                 args.uri.encode("utf-8"))
    if args.out:
        with open(args.out, "wb") as f:
            f.write(blob)
    else:
        print(base64.b64encode(blob).decode("ascii"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
