"""Event stores (SQLite embedded default, Elasticsearch) and the analysts' query language."""
