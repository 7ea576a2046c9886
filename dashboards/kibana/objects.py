"""Builds the Kibana saved objects as data: ``python -m dashboards.kibana.objects`` prints
the NDJSON that ``citysoc.ndjson`` holds.

Visualizations are aggregation-based (``visualization`` saved objects with a ``visState``)
because their field references are plain JSON a test can check against the index
template; every one references the data view by id.
"""
from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["DATA_VIEW_ID", "saved_objects", "to_ndjson", "DASHBOARDS"]

DATA_VIEW_ID = "citysoc-events"
_KIBANA = "8.17.0"

CAMERA = "event.dataset:(hikvision.log or dahua.log or onvif.event)"
WAREHOUSE = "event.dataset:(mysql.audit or postgresql.log or etl.job)"
ALERTS = "event.kind:alert"


def _ref() -> list[dict[str, str]]:
    return [{"id": DATA_VIEW_ID, "name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern"}]


def _search_source(query: str = "") -> dict[str, str]:
    return {"searchSourceJSON": json.dumps({"query": {"query": query, "language": "kuery"}, "filter": [],
                                            "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"})}


def _vis(vid: str, title: str, vis_type: str, aggs: list[dict[str, Any]], query: str = "",
         params: dict[str, Any] | None = None) -> dict[str, Any]:
    state = {"title": title, "type": vis_type, "aggs": aggs, "params": {"addTooltip": True, "addLegend": True,
                                                                       **(params or {})}}
    return {"id": vid, "type": "visualization", "coreMigrationVersion": _KIBANA, "typeMigrationVersion": "8.5.0",
            "attributes": {"title": title, "description": "", "uiStateJSON": "{}", "version": 1,
                           "visState": json.dumps(state), "kibanaSavedObjectMeta": _search_source(query)},
            "references": _ref()}


def _count() -> dict[str, Any]:
    return {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}}


def _terms(field: str, size: int = 10, schema: str = "segment", aid: str = "2") -> dict[str, Any]:
    return {"id": aid, "enabled": True, "type": "terms", "schema": schema,
            "params": {"field": field, "size": size, "order": "desc", "orderBy": "1", "otherBucket": False,
                       "missingBucket": False}}


def _histogram(aid: str = "2") -> dict[str, Any]:
    return {"id": aid, "enabled": True, "type": "date_histogram", "schema": "segment",
            "params": {"field": "@timestamp", "interval": "auto", "min_doc_count": 1, "extended_bounds": {}}}


def _over_time(vid: str, title: str, split: str, query: str = "") -> dict[str, Any]:
    return _vis(vid, title, "histogram", [_count(), _histogram(), _terms(split, 8, "group", "3")], query)


def _table(vid: str, title: str, fields: list[str], query: str = "", size: int = 20) -> dict[str, Any]:
    aggs = [_count()] + [_terms(f, size, "bucket", str(i + 2)) for i, f in enumerate(fields)]
    return _vis(vid, title, "table", aggs, query, {"perPage": 20})


def _pie(vid: str, title: str, field: str, query: str = "") -> dict[str, Any]:
    return _vis(vid, title, "pie", [_count(), _terms(field, 10)], query, {"isDonut": True})


def _search(sid: str, title: str, query: str, columns: list[str]) -> dict[str, Any]:
    return {"id": sid, "type": "search", "coreMigrationVersion": _KIBANA, "typeMigrationVersion": "8.0.0",
            "attributes": {"title": title, "description": "", "columns": columns, "sort": [["@timestamp", "desc"]],
                           "kibanaSavedObjectMeta": _search_source(query)},
            "references": _ref()}


def _dashboard(did: str, title: str, description: str, panels: list[tuple[str, str]]) -> dict[str, Any]:
    pj, refs = [], []
    for i, (pid, ptype) in enumerate(panels):
        x, y = (i % 2) * 24, (i // 2) * 15
        pj.append({"version": _KIBANA, "type": ptype, "gridData": {"x": x, "y": y, "w": 24, "h": 15, "i": str(i + 1)},
                   "panelIndex": str(i + 1), "embeddableConfig": {}, "panelRefName": f"panel_{i + 1}"})
        refs.append({"id": pid, "name": f"{i + 1}:panel_{i + 1}", "type": ptype})
    return {"id": did, "type": "dashboard", "coreMigrationVersion": _KIBANA, "typeMigrationVersion": "8.9.0",
            "attributes": {"title": title, "description": description, "panelsJSON": json.dumps(pj),
                           "optionsJSON": json.dumps({"useMargins": True, "hidePanelTitles": False}),
                           "timeRestore": True, "timeFrom": "now-24h", "timeTo": "now", "version": 1,
                           "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(
                               {"query": {"query": "", "language": "kuery"}, "filter": []})}},
            "references": refs}


def saved_objects() -> list[dict[str, Any]]:
    """Every object, data view first (Kibana resolves references in file order)."""
    objs: list[dict[str, Any]] = [{
        "id": DATA_VIEW_ID, "type": "index-pattern", "coreMigrationVersion": _KIBANA, "typeMigrationVersion": "8.0.0",
        "attributes": {"title": "citysoc-events*", "name": "citysoc events", "timeFieldName": "@timestamp"},
        "references": []}]
    soc = [
        _over_time("citysoc-soc-events-over-time", "Events over time by dataset", "event.dataset"),
        _pie("citysoc-soc-by-center", "Events by center", "citysoc.center"),
        _over_time("citysoc-soc-failures", "Failed outcomes over time by center", "citysoc.center",
                   "event.outcome:failure"),
        _table("citysoc-soc-top-hosts", "Top hosts and their asset criticality", ["host.name",
                                                                                 "citysoc.asset.criticality"]),
        _table("citysoc-soc-top-sources", "Top source addresses with failures", ["source.ip"], "event.outcome:failure"),
        _pie("citysoc-soc-by-category", "Events by category", "event.category"),
    ]
    alerts = [
        _over_time("citysoc-alerts-over-time", "Alert events over time by module", "event.module", ALERTS),
        _table("citysoc-alerts-by-rule", "Alert events by rule and host", ["rule.name", "host.name"], ALERTS),
        _table("citysoc-alerts-attack", "ATT&CK techniques in alert events", ["threat.technique.id",
                                                                              "threat.tactic.name"], ALERTS),
        _pie("citysoc-alerts-by-center", "Alert events by center", "citysoc.center", ALERTS),
        _search("citysoc-alerts-search", "Alert events", ALERTS, ["rule.name", "host.name", "user.name", "source.ip",
                                                                 "citysoc.center", "message"]),
    ]
    camera = [
        _over_time("citysoc-camera-over-time", "Camera and NVR events by action", "event.action", CAMERA),
        _table("citysoc-camera-failed-logins", "Failed camera logins by device and source",
               ["host.name", "source.ip"], f"{CAMERA} and event.outcome:failure"),
        _table("citysoc-camera-zones", "Camera events by zone and asset", ["citysoc.asset.zone", "citysoc.asset.id"],
               CAMERA),
        _pie("citysoc-camera-vendors", "Camera events by vendor", "citysoc.asset.vendor", CAMERA),
        _search("citysoc-camera-search", "Camera network events", CAMERA,
                ["host.name", "event.action", "event.outcome", "source.ip", "user.name", "message"]),
    ]
    warehouse = [
        _over_time("citysoc-warehouse-over-time", "Warehouse access by action", "event.action", WAREHOUSE),
        _table("citysoc-warehouse-users", "Warehouse accounts and their sources", ["user.name", "source.ip"], WAREHOUSE),
        _table("citysoc-warehouse-failures", "Failed warehouse access", ["user.name", "event.action"],
               f"{WAREHOUSE} and event.outcome:failure"),
        _pie("citysoc-warehouse-datasets", "Warehouse events by source", "event.dataset", WAREHOUSE),
        _search("citysoc-warehouse-search", "Warehouse access events", WAREHOUSE,
                ["user.name", "event.action", "event.outcome", "source.ip", "host.name", "message"]),
    ]
    groups = [
        ("citysoc-dashboard-soc", "citysoc: SOC overview", "All centers: volume, failures, hosts, sources.", soc),
        ("citysoc-dashboard-alerts", "citysoc: alerts",
         "Alert-kind events in the event store (YARA findings, asset health); the triaged alerts themselves "
         "live in citysoc's alert store and console.", alerts),
        ("citysoc-dashboard-camera", "citysoc: camera network", "Hikvision, Dahua and ONVIF devices.", camera),
        ("citysoc-dashboard-warehouse", "citysoc: warehouse access", "MySQL/PostgreSQL audit and ETL jobs.", warehouse),
    ]
    for did, title, desc, items in groups:
        objs.extend(items)
        objs.append(_dashboard(did, title, desc, [(o["id"], o["type"]) for o in items]))
    return objs


DASHBOARDS = ("citysoc-dashboard-soc", "citysoc-dashboard-alerts", "citysoc-dashboard-camera",
              "citysoc-dashboard-warehouse")


def to_ndjson(objs: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(o, ensure_ascii=False, sort_keys=True) + "\n" for o in objs)


if __name__ == "__main__":
    sys.stdout.write(to_ndjson(saved_objects()))
