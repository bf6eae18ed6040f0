"""The fleet's certificates, made with the ``cryptography`` package: one CA per fleet, the
broker's server certificate, one client certificate per device and one for the host.

Layout of ``<fleet dir>/pki/`` (keys are mode 0600, PEM, EC P-256)::

    ca.crt ca.key                 the fleet's CA (signs everything below; keep ca.key offline
                                  for a real fleet: only issuing new devices needs it)
    broker.crt broker.key         serverAuth, SAN: localhost, 127.0.0.1, ::1 and ``hosts``
    host.crt host.key             clientAuth, CN fltiny-host
    device-N.crt device-N.key     clientAuth, CN device-N (the broker's user name for device N)

``ensure_pki`` creates what is missing and never replaces an existing file, so certificates
already embedded in firmware stay valid; ``issue`` makes one more client certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fltiny.broker.topics import HOST_USER, device_user
from fltiny.errors import UsageError

CA_DAYS = 3650
LEAF_DAYS = 825


@dataclass(frozen=True)
class Identity:
    """A certificate and its private key (PEM files)."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    root: Path  # <fleet dir>/pki

    @property
    def ca(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def broker(self) -> Identity:
        return self._id("broker")

    @property
    def host(self) -> Identity:
        return self._id("host")

    def device(self, device_id: int) -> Identity:
        return self._id(device_user(device_id))

    def _id(self, name: str) -> Identity:
        return Identity(self.root / f"{name}.crt", self.root / f"{name}.key")


def _new_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key) -> None:
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def _write_cert(path: Path, cert) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load(pki: Pki):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
        key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    except (OSError, ValueError) as exc:
        raise UsageError(f"the fleet CA in {pki.root} cannot be read ({exc}): remove "
                         f"{pki.root} to start a new fleet (every device then needs new "
                         "certificates)") from None
    return ca, key


def _name(cn: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fltiny fleet"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _make_ca(pki: Pki, cn: str) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    _write_key(pki.ca_key, key)
    _write_cert(pki.ca, cert)


def _issue(pki: Pki, ident: Identity, cn: str, *, server: bool, hosts: Iterable[str] = ()) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca, ca_key = _load(pki)
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5))
         .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                               else ExtendedKeyUsageOID.CLIENT_AUTH]),
                        critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        critical=False))
    if server:
        names: list[x509.GeneralName] = []
        for h in dict.fromkeys(["localhost", "127.0.0.1", "::1", *hosts]):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        b = b.add_extension(x509.SubjectAlternativeName(names), critical=False)
    _write_key(ident.key, key)
    _write_cert(ident.cert, b.sign(ca_key, hashes.SHA256()))


def ensure_pki(fleet_dir: Path, device_ids: Iterable[int] = (), *, hosts: Iterable[str] = (),
               ca_name: str = "fltiny fleet CA") -> Pki:
    """The fleet's PKI under ``fleet_dir/pki``: creates the CA, the broker's and the host's
    certificates and one per device id when missing (existing files are kept)."""
    pki = Pki(Path(fleet_dir) / "pki")
    try:
        pki.root.mkdir(parents=True, exist_ok=True)
        if not pki.ca.is_file() or not pki.ca_key.is_file():
            _make_ca(pki, ca_name)
        if not pki.broker.cert.is_file():
            _issue(pki, pki.broker, "fltiny broker", server=True, hosts=hosts)
        if not pki.host.cert.is_file():
            _issue(pki, pki.host, HOST_USER, server=False)
        for i in device_ids:
            issue_device(pki, int(i))
    except OSError as exc:
        raise UsageError(f"cannot write the fleet's certificates in {pki.root}: {exc}") from None
    return pki


def issue_device(pki: Pki, device_id: int) -> Identity:
    """Device ``device_id``'s client certificate (made when missing)."""
    ident = pki.device(device_id)
    if not ident.cert.is_file() or not ident.key.is_file():
        _issue(pki, ident, device_user(device_id), server=False)
    return ident
