"""A software stand-in for the device's TPM, for tests only: it owns RSA
EK/SRK private keys and performs what TPM2_ActivateCredential + TPM2_Import
do to an activation blob (docs/protocol.md §6.5), checking every integrity value,
so a test can recover the HMAC key the emulator wrapped.
"""

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import dps_tpm


class ActivationError(Exception):
    pass


def _oaep(label):
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                        algorithm=hashes.SHA256(), label=label)


def _split_tpm2b(data):
    (n,) = struct.unpack(">H", data[:2])
    if len(data) < 2 + n:
        raise ActivationError("truncated TPM2B")
    return data[2:2 + n], data[2 + n:]


class SoftTpm:
    def __init__(self):
        self.ek_key = rsa.generate_private_key(65537, 2048)
        self.srk_key = rsa.generate_private_key(65537, 2048)
        self.ek_pub = dps_tpm.rsa_tpm2b_public(self.ek_key.public_key().public_numbers().n, "ek")
        self.srk_pub = dps_tpm.rsa_tpm2b_public(self.srk_key.public_key().public_numbers().n, "srk")
        _, self.srk_name = dps_tpm.parse_rsa_public(self.srk_pub)

    @property
    def registration_id(self):
        return dps_tpm.registration_id_from_ek(self.ek_pub)

    def activate(self, blob):
        """Returns the HMAC key inside `blob` (raises ActivationError)."""
        id_object, secret, duplicate, in_sym_seed, id_pub, enc_uri = \
            dps_tpm.split_activation_blob(blob)

        # ActivateCredential: EK decrypts the seed, Name(SRK) binds it.
        seed2 = self.ek_key.decrypt(secret, _oaep(dps_tpm.OAEP_IDENTITY))
        integrity, enc_identity = _split_tpm2b(id_object)
        hmac_key2 = dps_tpm.kdfa(seed2, b"INTEGRITY", b"", b"", 256)
        if not hmac.compare_digest(integrity, hmac.new(
                hmac_key2, enc_identity + self.srk_name, hashlib.sha256).digest()):
            raise ActivationError("credential integrity check failed")
        sym_key2 = dps_tpm.kdfa(seed2, b"STORAGE", self.srk_name, b"", 128)
        inner_key, rest = _split_tpm2b(dps_tpm.aes_cfb_decrypt(sym_key2, enc_identity))
        if rest or len(inner_key) != 16:
            raise ActivationError("bad inner key")

        # Import: SRK decrypts the outer seed; check outer HMAC, unwrap both layers.
        id_name = struct.pack(">H", dps_tpm.ALG_SHA256) + hashlib.sha256(id_pub).digest()
        seed1 = self.srk_key.decrypt(in_sym_seed, _oaep(dps_tpm.OAEP_DUPLICATE))
        outer_hmac, dup_sens = _split_tpm2b(duplicate)
        hmac_key1 = dps_tpm.kdfa(seed1, b"INTEGRITY", b"", b"", 256)
        if not hmac.compare_digest(outer_hmac, hmac.new(
                hmac_key1, dup_sens + id_name, hashlib.sha256).digest()):
            raise ActivationError("outer integrity check failed")
        sym_key1 = dps_tpm.kdfa(seed1, b"STORAGE", id_name, b"", 128)
        enc_inner = dps_tpm.aes_cfb_decrypt(sym_key1, dup_sens)
        inner = dps_tpm.aes_cfb_decrypt(inner_key, enc_inner)
        inner_integrity, sens2b = _split_tpm2b(inner)
        if inner_integrity != hashlib.sha256(sens2b + id_name).digest():
            raise ActivationError("inner integrity check failed")
        sens, _ = _split_tpm2b(sens2b)
        if struct.unpack(">H", sens[:2])[0] != dps_tpm.ALG_KEYEDHASH:
            raise ActivationError("not a keyed-hash object")
        auth, rest = _split_tpm2b(sens[2:])
        seed_value, rest = _split_tpm2b(rest)
        key, rest = _split_tpm2b(rest)
        if rest:
            raise ActivationError("trailing bytes in sensitive area")
        # TPM2_Import's binding check: unique == H(seedValue || key).
        if dps_tpm.identity_key_public(seed_value, key) != id_pub:
            raise ActivationError("public area does not bind the key")
        self.last_uri = dps_tpm.aes_cfb_decrypt(inner_key, enc_uri) if enc_uri else b""
        return key
