"""The result types of a DNS check: one MechanismResult per SPF, DKIM and DMARC.

Plain dataclasses with no ORM or settings access, so they serialise to the JSON of
``check_dns --json`` and to the history rows unchanged. ``unknown`` always means
"could not check" (a DNS error), never "missing".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(enum.StrEnum):
    VALID = "valid"
    MISSING = "missing"
    WRONG = "wrong"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        return {
            "valid": "Valid",
            "missing": "Missing",
            "wrong": "Wrong",
            "unknown": "Could not check",
        }[self.value]


# Worst first: the status a mechanism ends with when several findings disagree.
_SEVERITY = [Status.WRONG, Status.UNKNOWN, Status.MISSING, Status.VALID]


def worst(*statuses: Status) -> Status:
    return min(statuses, key=_SEVERITY.index)


@dataclass
class MechanismResult:
    """What was found for one mechanism and what to publish instead.

    ``record_name``/``record_type`` say where ``expected`` goes; ``problems`` are full
    sentences for the admin (for a valid record they are advice). ``extra`` holds the
    mechanism's own figures (SPF lookup counts, the DKIM CNAME chain, the DMARC
    organizational domain): added keys of the JSON, never renamed ones.
    """

    status: Status
    record_name: str
    record_type: str
    expected: str
    found: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """The shape ``check_dns --json`` prints: the four base keys, then ``extra``."""
        base: dict[str, object] = {
            "status": self.status.value,
            "found": list(self.found),
            "expected": self.expected,
            "problems": list(self.problems),
        }
        extra = {k: v for k, v in self.extra.items() if k not in _STORED_KEYS}
        return base | extra

    def to_dict(self) -> dict[str, object]:
        """Everything, for storage on a history row."""
        return {
            **self.as_json(),
            "record_name": self.record_name,
            "record_type": self.record_type,
        }

    @classmethod
    def from_dict(cls, data: dict) -> MechanismResult:
        return cls(
            status=Status(data.get("status", "unknown")),
            record_name=data.get("record_name", ""),
            record_type=data.get("record_type", ""),
            expected=data.get("expected", ""),
            found=list(data.get("found", [])),
            problems=list(data.get("problems", [])),
            extra={k: v for k, v in data.items() if k not in _STORED_KEYS},
        )


_STORED_KEYS = {"status", "found", "expected", "problems", "record_name", "record_type"}


MECHANISMS = ("spf", "dkim", "dmarc")


@dataclass
class DomainReport:
    domain: str
    spf: MechanismResult
    dkim: MechanismResult
    dmarc: MechanismResult

    def mechanisms(self) -> list[tuple[str, MechanismResult]]:
        return [(name, getattr(self, name)) for name in MECHANISMS]

    @property
    def is_valid(self) -> bool:
        return all(result.status == Status.VALID for _, result in self.mechanisms())

    def as_json(self) -> dict[str, object]:
        return {"domain": self.domain, **{n: r.as_json() for n, r in self.mechanisms()}}

    def to_dict(self) -> dict[str, object]:
        return {"domain": self.domain, **{n: r.to_dict() for n, r in self.mechanisms()}}

    @classmethod
    def from_dict(cls, data: dict) -> DomainReport:
        return cls(
            domain=data.get("domain", ""),
            **{n: MechanismResult.from_dict(data.get(n, {})) for n in MECHANISMS},
        )
