"""A real DNS server on 127.0.0.1 (UDP and TCP) serving zones the tests change.

Built on dnslib's server classes. It answers like a recursive resolver would for the
names it holds: CNAME chains are followed inside its data, a name with no records and
nothing below it is NXDOMAIN, an existing name without the asked type is NODATA. Tests
can make chosen names (or every name) answer SERVFAIL or never answer at all.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A, DNSError, DNSRecord
from dnslib.server import DNSHandler, DNSLogger, DNSServer

MAX_CNAME_HOPS = 8


def _fqdn(name: str) -> str:
    return name.lower().rstrip(".") + "."


def _txt_chunks(value: str) -> list[bytes]:
    """Split a TXT value into the 255-byte character-strings DNS requires."""
    raw = value.encode()
    return [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]


# The record types the server holds, each built from its text value.
RDATA = {
    "TXT": lambda value: TXT(_txt_chunks(value)),
    "CNAME": CNAME,
    "MX": lambda value: MX(value, 10),
    "A": A,
    "AAAA": AAAA,
}


class _Drop(DNSError):
    """Raised to send no reply at all (a nameserver that never answers)."""


class _Handler(DNSHandler):
    def get_reply(self, data: bytes) -> bytes:
        request = DNSRecord.parse(data)
        resolver: ZoneResolver = self.server.resolver
        qname = _fqdn(str(request.q.qname))
        resolver.record_query(qname, QTYPE[request.q.qtype])
        if resolver.is_silent(qname):
            raise _Drop(f"dropping query for {qname}")
        return resolver.resolve(request, self).pack()


@dataclass
class ZoneResolver:
    """The mutable zone data and the answering logic (thread-safe)."""

    records: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    servfail_names: set[str] = field(default_factory=set)
    silent_names: set[str] = field(default_factory=set)
    silent_all: bool = False
    queries: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record_query(self, qname: str, qtype: str) -> None:
        with self.lock:
            self.queries.append((qname, qtype))

    def is_silent(self, qname: str) -> bool:
        with self.lock:
            return self.silent_all or qname in self.silent_names

    def _exists(self, name: str) -> bool:
        suffix = "." + name
        return any(n == name or n.endswith(suffix) for n in self.records)

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        reply.header.ra = 1
        qtype = QTYPE[request.q.qtype]
        name = _fqdn(str(request.q.qname))
        with self.lock:
            for _ in range(MAX_CNAME_HOPS):
                if name in self.servfail_names:
                    reply.header.rcode = RCODE.SERVFAIL
                    return reply
                rrs = self.records.get(name, [])
                cnames = [value for rtype, value in rrs if rtype == "CNAME"]
                if cnames and qtype != "CNAME":
                    reply.add_answer(
                        RR(name, QTYPE.CNAME, rdata=CNAME(cnames[0]), ttl=60)
                    )
                    name = _fqdn(cnames[0])
                    continue
                for rtype, value in rrs:
                    if rtype != qtype:
                        continue
                    reply.add_answer(
                        RR(
                            name,
                            getattr(QTYPE, rtype),
                            rdata=RDATA[rtype](value),
                            ttl=60,
                        )
                    )
                if not rrs and not self._exists(name):
                    reply.header.rcode = RCODE.NXDOMAIN
                return reply
        reply.header.rcode = RCODE.SERVFAIL
        return reply


class LoopbackDnsServer:
    """dnslib UDP + TCP servers on one loopback port, sharing one ZoneResolver."""

    def __init__(self) -> None:
        self.zone = ZoneResolver()
        self.host = "127.0.0.1"
        self._servers: list[DNSServer] = []
        self.port = 0

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> LoopbackDnsServer:
        logger = DNSLogger(logf=lambda *_: None)
        last_error: OSError | None = None
        for _ in range(20):
            udp = DNSServer(
                self.zone, address=self.host, port=0, logger=logger, handler=_Handler
            )
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(
                    self.zone,
                    address=self.host,
                    port=port,
                    tcp=True,
                    logger=logger,
                    handler=_Handler,
                )
            except OSError as exc:  # TCP port taken by someone else: try another one
                last_error = exc
                udp.server.server_close()
                continue
            self.port = port
            self._servers = [udp, tcp]
            for server in self._servers:
                server.start_thread()
            self._wait_until_answering()
            return self
        raise RuntimeError(f"could not bind a loopback DNS port: {last_error}")

    def _wait_until_answering(self) -> None:
        probe = DNSRecord.question("probe.invalid", "TXT").pack()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2)
            sock.sendto(probe, (self.host, self.port))
            sock.recvfrom(4096)  # raises TimeoutError if the server did not start
        self.zone.queries.clear()

    def stop(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()
        self._servers = []

    # -- addressing ------------------------------------------------------------
    @property
    def nameserver(self) -> str:
        """``host:port`` as KNOWLIX_DNS_NAMESERVERS expects it."""
        return f"{self.host}:{self.port}"

    # -- zone editing (tests call these) -----------------------------------------
    def reset(self) -> None:
        with self.zone.lock:
            self.zone.records.clear()
            self.zone.servfail_names.clear()
            self.zone.silent_names.clear()
            self.zone.silent_all = False
            self.zone.queries.clear()

    def add_txt(self, name: str, *values: str) -> None:
        self.add(name, "TXT", *values)

    def set_txt(self, name: str, *values: str) -> None:
        """Replace the TXT records at ``name``."""
        self.remove(name, "TXT")
        self.add_txt(name, *values)

    def add(self, name: str, rtype: str, *values: str) -> None:
        """Add records of any type in ``RDATA`` (A, AAAA, MX exchange, TXT)."""
        assert rtype in RDATA, rtype
        with self.zone.lock:
            rrs = self.zone.records.setdefault(_fqdn(name), [])
            rrs.extend((rtype, value) for value in values)

    def set_cname(self, name: str, target: str) -> None:
        """Make ``name`` an alias of ``target`` (replaces everything at ``name``)."""
        with self.zone.lock:
            self.zone.records[_fqdn(name)] = [("CNAME", target)]

    def remove(self, name: str, rtype: str | None = None) -> None:
        with self.zone.lock:
            key = _fqdn(name)
            kept = [
                rr for rr in self.zone.records.get(key, []) if rtype and rr[0] != rtype
            ]
            if kept:
                self.zone.records[key] = kept
            else:
                self.zone.records.pop(key, None)

    def servfail(self, name: str) -> None:
        """Answer SERVFAIL for ``name`` (and for chains that reach it)."""
        with self.zone.lock:
            self.zone.servfail_names.add(_fqdn(name))

    def silence(self, name: str | None = None) -> None:
        """Never answer queries for ``name``, or for any name when it is None."""
        with self.zone.lock:
            if name is None:
                self.zone.silent_all = True
            else:
                self.zone.silent_names.add(_fqdn(name))

    @property
    def queries(self) -> list[tuple[str, str]]:
        """(name, type) of every query received since the last reset."""
        with self.zone.lock:
            return list(self.zone.queries)
