"""Partitioning: which detector partition owns an event's state. One owner of this fact.

Stateful detection (Sigma correlations, network detectors, asset health) keeps state per
*key*: a correlation's group-by values, a network detector's source address. N detector
processes (the embedded worker model) or N detector nodes (the NATS bus) give exactly the
alerts one process would only if every event that feeds one key's state reaches the same
partition. This module is the single place that maps key values to a partition number, so
the embedded bus and the NATS bus can never disagree.

The protocol, used by both buses:

* A stateful detector declares one :class:`RoutingKey` (its name and the ECS fields whose
  values make its state key). Correlations with field aliases declare the resolved field
  per referenced rule, so the same group lands in one partition whatever rule matched.
* :func:`partition_of` hashes the key values with CRC-32 (stable across processes,
  machines and Python versions, unlike ``hash()``, which is salted per process) and takes it
  modulo the partition count. The count is a setting fixed for a deployment; ownership of
  partitions moves between processes, the count does not.
* An event with no value for a key does not feed that key's state (the detectors skip it
  too), so it has no partition for that key: :func:`route` leaves it out.
* Stateless rules may run on any partition; a bus runs them once per event, on the
  event's *home* partition (:func:`home_partition`).
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.events import get_field

__all__ = ["RoutingKey", "key_values", "partition_of", "partition_of_key", "route", "home_partition"]

_SEP = b"\x1f"  # unit separator: cannot appear in the text form of a field value by accident of joining


@dataclass(frozen=True)
class RoutingKey:
    """The state key of one stateful detector: a name (for metrics and logs) and its fields."""

    name: str
    fields: tuple[str, ...]


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return str(value)


def key_values(event: Mapping[str, Any], fields: Sequence[str]) -> tuple[str, ...] | None:
    """The text of each field of ``fields`` in ``event``, or None if any is missing or empty."""
    out = []
    for name in fields:
        v = get_field(event, name)
        if v is None or v == "" or v == []:
            return None
        out.append(_text(v))
    return tuple(out)


def partition_of(values: Sequence[str], partitions: int) -> int:
    """The partition (0..partitions-1) of a key given as its field values' text."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    if partitions == 1:
        return 0
    data = _SEP.join(v.encode("utf-8", "surrogatepass") for v in values)
    return zlib.crc32(data) % partitions


def partition_of_key(key: Sequence[Any], partitions: int) -> int:
    """The partition of a detector's own state key (a tuple of field values, ``None`` for a
    missing one, as Sigma correlations group): the same hash over each value's text, so a
    key maps to one partition in every process. Used by the embedded detector processes
    (``core.detector_processes``), where each stateful detector hashes the key it keeps."""
    return partition_of([_text(v) for v in key], partitions)


def route(event: Mapping[str, Any], keys: Sequence[RoutingKey], partitions: int) -> dict[str, int]:
    """Routing key name -> partition for every key ``event`` has values for."""
    out: dict[str, int] = {}
    for key in keys:
        vals = key_values(event, key.fields)
        if vals is not None:
            out[key.name] = partition_of(vals, partitions)
    return out


def home_partition(event: Mapping[str, Any], partitions: int, fallback: str = "") -> int:
    """Where an event's stateless work runs: its source address if it has one, else ``fallback``.

    ``fallback`` is anything stable for the event (its id, or its original text), so a
    redelivered event goes home to the same partition.
    """
    src = get_field(event, "source.ip")
    return partition_of((_text(src) if src else fallback,), partitions)
