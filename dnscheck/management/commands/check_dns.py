"""``manage.py check_dns DOMAIN [--json]``: the Settings page's check, from the shell.

The JSON is ``{"domain": …, "spf": {…}, "dkim": {…}, "dmarc": {…}}``, each mechanism
with ``status`` (valid, missing, wrong, unknown), ``found``, ``expected`` and
``problems``, then its own figures: SPF ``dns_lookups``, ``void_lookups`` (null when
the record could not be read) and ``macro_terms``; DKIM ``cname_chain``; DMARC
``organizational_domain`` and ``policy_domain`` (null when no record applies). A
saved sending domain also gets the result in its history.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dnscheck import notify, services
from dnscheck.checks import is_valid_domain_name, normalize_domain
from dnscheck.models import DomainCheck, SendingDomain
from dnscheck.report import DomainReport, Status


class Command(BaseCommand):
    help = "Check a domain's SPF, DKIM and DMARC records and say what to publish."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("domain", help="e.g. company.com")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args: object, **options: object) -> None:
        name = normalize_domain(str(options["domain"]))
        if not is_valid_domain_name(name):
            raise CommandError(f"{options['domain']!r} is not a domain name")
        report = services.run_check(name)
        domain = SendingDomain.objects.filter(name=name).first()
        if domain is not None:
            notify.record_check_and_notify(
                domain_id=domain.pk, report=report, trigger=DomainCheck.Trigger.COMMAND
            )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(), indent=2))
        else:
            self.stdout.write(format_report(report))


STYLE = {Status.VALID: "✓", Status.MISSING: "✗", Status.WRONG: "✗", Status.UNKNOWN: "?"}


def format_report(report: DomainReport) -> str:
    lines = [report.domain]
    for name, result in report.mechanisms():
        lines.append(
            f"  {STYLE[result.status]} {name.upper():<6}{result.status.label:<16}"
            f"{result.record_type} {result.record_name}"
        )
        for found in result.found:
            lines.append(f"      found:    {found}")
        lines.append(f"      expected: {result.expected}")
        for problem in result.problems:
            lines.append(f"      - {problem}")
    return "\n".join(lines)
