"""Reports for auditors: period reports (PDF, CSV, JSON, HTML; Vietnamese and English),
evidence archives, and the SHA-256 manifests that let anyone check them.

Floor 3: reads the stores only through ``core`` protocols that ``citysoc/`` hands in
(:class:`reports.collect.Sources`). Start with :func:`reports.generate.generate_report`,
:func:`reports.evidence.export_evidence` and :func:`reports.manifest.verify`;
:class:`reports.service.ReportGenerator` is the server's :class:`core.reports.ReportService`.
"""
from reports.collect import Sources, collect
from reports.evidence import EvidenceSources, export_evidence
from reports.generate import generate_report
from reports.manifest import verify
from reports.period import Period, parse_period
from reports.service import ReportGenerator

__all__ = ["Sources", "collect", "EvidenceSources", "export_evidence", "generate_report", "verify", "Period",
           "parse_period", "ReportGenerator"]
