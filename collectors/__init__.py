"""Collectors: sources (one module per transport) and parsers (one module per log format).

Sources emit :class:`core.protocols.RawRecord` batches and never parse; the pipeline
calls :func:`collectors.parsers.parse_record` on each record, then
:class:`collectors.enrich.AssetIndex` attributes the event to an inventory asset.
"""
