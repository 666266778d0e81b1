"""Test certificates, made with `cryptography`: a CA, a broker certificate for 127.0.0.1 and
localhost, client certificates (trusted, from an untrusted CA, expired), all as PEM files."""

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn, ou=None, o="Odradek"):
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _pem_cert(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


class CA:
    def __init__(self, name):
        self.key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        self.name = _name(name)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue(self, subject, server=False, expired=False):
        key = _key()
        now = datetime.datetime.now(datetime.timezone.utc)
        start, end = (now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)) if expired else (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            # A broker is a server to clients and a client of the controllers and other brokers.
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        else:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        return key, b.sign(self.key, hashes.SHA256())


class Certs:
    """Writes every PEM file under `dir`; attributes are their paths."""

    def __init__(self, dir: Path):
        dir.mkdir(parents=True, exist_ok=True)
        ca, rogue = CA("Odradek Test CA"), CA("Rogue CA")
        self.ca = dir / "ca.pem"
        self.ca.write_bytes(_pem_cert(ca.cert))
        key, cert = ca.issue(_name("broker", "Brokers"), server=True)
        # Kafka's PEM key store: the private key and the certificate chain in one file.
        self.broker = dir / "broker.pem"
        self.broker.write_bytes(_pem_key(key) + _pem_cert(cert))
        self.broker_cert, self.broker_key = dir / "broker.crt", dir / "broker.key"
        self.broker_cert.write_bytes(_pem_cert(cert))
        self.broker_key.write_bytes(_pem_key(key))
        self.clients = {}
        for label, issuer, subject, expired in [
            ("alice", ca, _name("alice", "Engineering"), False),
            ("rogue", rogue, _name("mallory", "Engineering"), False),
            ("expired", ca, _name("old", "Engineering"), True),
        ]:
            key, cert = issuer.issue(subject, expired=expired)
            c, k = dir / f"{label}.crt", dir / f"{label}.key"
            c.write_bytes(_pem_cert(cert))
            k.write_bytes(_pem_key(key))
            self.clients[label] = (c, k)
