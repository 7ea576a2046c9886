"""ElasticsearchEventStore against a real cluster: the shared EventStore contract (the same
tests the SQLite store passes) and what only Elasticsearch has (templates, ILM, mappings).

Needs a running Elasticsearch 9.x; point ``ELASTICSEARCH_URL`` at it (and, as needed,
``ELASTICSEARCH_API_KEY`` or ``ELASTICSEARCH_USERNAME``/``ELASTICSEARCH_PASSWORD``,
``ELASTICSEARCH_CA_CERTS``, ``ELASTICSEARCH_VERIFY_CERTS=false``). With docker-compose::

    docker compose up -d elasticsearch
    ELASTICSEARCH_URL=http://127.0.0.1:9200 ELASTICSEARCH_USERNAME=elastic \\
    ELASTICSEARCH_PASSWORD=... .venv/bin/python -m pytest -q tests/storage/test_storage_es.py

Every test gets its own prefix (``citysoc-test-<random>``: its own data stream, templates
and ILM policy) and removes them afterwards, so it never touches a deployment's data.
Without ``ELASTICSEARCH_URL`` every test here is skipped with that reason; the code paths
that need no cluster are tested in ``test_storage_es_dsl.py`` and, over real sockets
against a scripted server, in ``test_storage_es_bulk.py``.
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from core.settings import StorageSettings
from storage import es_mappings
from storage.elasticsearch import ElasticsearchEventStore

_spec = importlib.util.spec_from_file_location("storage_contract", pathlib.Path(__file__).with_name("contract.py"))
contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(contract)

NO_CLUSTER = "ELASTICSEARCH_URL is not set: no Elasticsearch cluster to run the contract suite against"


def _settings(prefix: str) -> StorageSettings:
    url = os.environ.get("ELASTICSEARCH_URL")
    if not url:
        pytest.skip(NO_CLUSTER)
    return StorageSettings(
        backend="elasticsearch",
        elasticsearch_url=url,
        elasticsearch_api_key=os.environ.get("ELASTICSEARCH_API_KEY") or None,
        elasticsearch_username=os.environ.get("ELASTICSEARCH_USERNAME") or None,
        elasticsearch_password=os.environ.get("ELASTICSEARCH_PASSWORD") or None,
        elasticsearch_ca_certs=os.environ.get("ELASTICSEARCH_CA_CERTS") or None,
        elasticsearch_verify_certs=os.environ.get("ELASTICSEARCH_VERIFY_CERTS", "true").lower() not in ("0", "false", "no"),
        elasticsearch_prefix=prefix,
        retention_days=30,
    )


def _remove(store: ElasticsearchEventStore) -> None:
    """Delete everything a test store installed (data stream, templates, policy)."""
    es = store._es  # the store's own authenticated client
    p = store.prefix
    es.options(ignore_status=404).indices.delete_data_stream(name=es_mappings.data_stream_name(p))
    es.options(ignore_status=404).indices.delete_index_template(name=es_mappings.index_template_name(p))
    for name in es_mappings.component_template_names(p):
        es.options(ignore_status=404).cluster.delete_component_template(name=name)
    es.options(ignore_status=404).ilm.delete_lifecycle(name=es_mappings.ilm_policy_name(p))


@pytest.fixture
def es_store_factory() -> Iterator[Callable[[], ElasticsearchEventStore]]:
    made: list[ElasticsearchEventStore] = []

    def make() -> ElasticsearchEventStore:
        store = ElasticsearchEventStore(_settings(f"citysoc-test-{uuid.uuid4().hex[:10]}"), refresh="wait_for")
        made.append(store)
        return store

    yield make
    for store in made:
        cleaner = ElasticsearchEventStore(_settings(store.prefix), setup=False)
        try:
            _remove(cleaner)
        finally:
            cleaner.close()


class TestElasticsearchContract(contract.EventStoreContract):
    @pytest.fixture
    def store_factory(self, es_store_factory: Callable[[], ElasticsearchEventStore]) -> Callable[[], ElasticsearchEventStore]:
        return es_store_factory

    def settle(self, store: Any) -> None:
        store.refresh()


# --- what only Elasticsearch has -----------------------------------------------------------
@pytest.fixture
def es_store(es_store_factory: Callable[[], ElasticsearchEventStore]) -> Iterator[ElasticsearchEventStore]:
    store = es_store_factory()
    yield store
    store.close()


def test_storage_es_live_setup_creates_stream_with_template_and_ilm(es_store: ElasticsearchEventStore) -> None:
    es_store.setup()
    es_store.setup()  # idempotent
    ds = es_store._es.indices.get_data_stream(name=es_store.data_stream)["data_streams"][0]
    assert ds["template"] == es_mappings.index_template_name(es_store.prefix)
    assert ds["ilm_policy"] == es_mappings.ilm_policy_name(es_store.prefix)
    backing = ds["indices"][0]["index_name"]
    mapping = es_store._es.indices.get_mapping(index=backing)[backing]["mappings"]["properties"]
    assert mapping["@timestamp"]["type"] == "date"
    assert mapping["source"]["properties"]["ip"]["type"] == "ip"
    assert mapping["message"]["type"] == "match_only_text"


def test_storage_es_live_mapping_conflict_is_a_per_item_error(es_store: ElasticsearchEventStore) -> None:
    report = es_store.ingest(
        [
            {"@timestamp": "2026-05-01T00:00:00Z", "source": {"port": 22}},
            {"@timestamp": "2026-05-01T00:00:01Z", "source": {"port": {"not": "a number"}}},
            {"@timestamp": "2026-05-01T00:00:02Z", "source": {"ip": "not-an-ip"}},  # ignore_malformed keeps it
        ]
    )
    assert report.stored == 2
    assert [(e.index, e.status) for e in report.errors] == [(1, 400)]
    assert "source.port" in report.errors[0].reason


def test_storage_es_live_caseless_and_wildcard_fields(es_store: ElasticsearchEventStore) -> None:
    es_store.ingest(
        [
            {
                "@timestamp": "2026-05-01T00:00:00Z",
                "process": {"executable": "C:\\Windows\\System32\\CMD.EXE", "command_line": "cmd.exe /c whoami /all"},
            }
        ]
    )
    assert es_store.count("process.executable.caseless:c\\:\\\\windows\\\\system32\\\\cmd.exe") == 1
    assert es_store.count("process.command_line:*whoami*") == 1
    assert es_store.count("process.command_line.text:whoami") == 1
