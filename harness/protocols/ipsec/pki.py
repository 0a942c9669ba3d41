"""A CA made fresh for each run (each process), and end-entity certificates from it for IKE peers.

Each certificate carries its identity as a dNSName subjectAltName, so the FQDN IDs the PSK cases use
(`initiator.lab`, `responder.lab`) also name the certificates.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# rsa4096 exists for size, not strength: its certificate and signature push IKE_AUTH past 1280 bytes,
# where RFC 7383 fragmentation has to start.
KEY_TYPES = ("rsa", "rsa4096", "ecdsa")
VALIDITY = datetime.timedelta(days=2)


@dataclass(frozen=True)
class Credentials:
    key_type: str
    identity: str
    cert_pem: bytes
    key_pem: bytes  # PKCS#8, unencrypted: it lives only in the lab
    ca_pem: bytes


def _new_key(key_type: str):
    if key_type in ("rsa", "rsa4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=4096 if key_type == "rsa4096" else 2048)
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key type {key_type!r}; known: {', '.join(KEY_TYPES)}")


# How an identity is named in a certificate's subjectAltName (RFC 5280 4.2.1.6), by the IKE ID type it matches.
ALT_NAMES = {"dns": x509.DNSName, "email": x509.RFC822Name,
             "ip": lambda text: x509.IPAddress(__import__("ipaddress").ip_address(text))}


def _certificate(subject: str, key, issuer: str, issuer_key, *, ca: bool, san: str | None = None,
                 alt_name: str = "dns"):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + VALIDITY)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([ALT_NAMES[alt_name](san)]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@lru_cache(maxsize=None)
def _ca(key_type: str):
    key = _new_key(key_type)
    name = f"overlay-interop lab CA ({key_type})"
    return name, key, _certificate(name, key, name, key, ca=True)


@lru_cache(maxsize=None)
def issue(identity: str, key_type: str, alt_name: str = "dns") -> Credentials:
    """A certificate for `identity` from this run's CA of the same key type: subject CN=identity, and identity as
    a subjectAltName of the kind `alt_name` (ALT_NAMES: "dns", "email", "ip")."""
    if alt_name not in ALT_NAMES:
        raise ValueError(f"unknown subjectAltName kind {alt_name!r}; known: {', '.join(ALT_NAMES)}")
    ca_name, ca_key, ca_cert = _ca(key_type)
    key = _new_key(key_type)
    cert = _certificate(identity, key, ca_name, ca_key, ca=False, san=identity, alt_name=alt_name)
    pem = serialization.Encoding.PEM
    return Credentials(key_type, identity, cert.public_bytes(pem),
                       key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
                       ca_cert.public_bytes(pem))
