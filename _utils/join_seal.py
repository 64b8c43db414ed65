"""
Sealing join data for one minion (the ``kubeadm`` execution module's mine
functions): the JSON of the data sealed with a fresh AES-256-GCM key, that
key wrapped with the minion's RSA key (OAEP, SHA-256). RSA-OAEP alone takes
at most 190 bytes with a 2048-bit key, less than join data with a DNS
endpoint. The recipient (the minion id) is bound as associated data: a blob
opens only for that id. ``cryptography`` is a dependency of Salt itself
(3007+), so every minion has it.
"""

import base64
import json
import os

ENVELOPE = "RSA-OAEP-256+A256GCM"


def _oaep():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def seal(public_pem, data, recipient=""):
    """``data`` sealed for the holder of ``public_pem`` (text), bound to
    ``recipient``: ``{"alg", "key", "nonce", "data"}``, base64 values."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = serialization.load_pem_public_key(public_pem.encode())
    secret = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    sealed = AESGCM(secret).encrypt(nonce, json.dumps(data).encode(), recipient.encode())

    def b64(raw):
        return base64.b64encode(raw).decode()

    return {"alg": ENVELOPE, "key": b64(key.encrypt(secret, _oaep())), "nonce": b64(nonce), "data": b64(sealed)}


def unseal(private_pem, blob, recipient=""):
    """Open a blob of :py:func:`seal` with ``private_pem`` (bytes); raises
    ValueError with what to do when it is not ours or not this format."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not isinstance(blob, dict) or blob.get("alg") != ENVELOPE:
        raise ValueError(
            f"the join data is not in the {ENVELOPE} format (published by an older K8sNvidia?): publish it again"
        )
    key = serialization.load_pem_private_key(private_pem, password=None)
    try:
        secret = key.decrypt(base64.b64decode(blob["key"]), _oaep())
        plain = AESGCM(secret).decrypt(
            base64.b64decode(blob["nonce"]), base64.b64decode(blob["data"]), recipient.encode()
        )
    except (ValueError, InvalidTag, KeyError, TypeError):
        raise ValueError(
            f"the join data for {recipient or 'this minion'} does not open with this minion's key (was its key "
            "changed since it published k8snvidia_pubkey?): publish the key and the join data again"
        ) from None
    return json.loads(plain)
