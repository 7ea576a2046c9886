"""The analysts' query language: Lucene syntax parsed once into :mod:`storage.query.ast`,
then translated to parameterized SQL (``storage.query.sql``) or Elasticsearch DSL
(``storage.query.es``)."""
