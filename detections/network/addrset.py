"""A set of addresses and networks with a cheap membership test (exact addresses are a
set lookup; networks are checked only when there are any)."""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["AddrSet"]


class AddrSet:
    """``"10.20.0.5" in AddrSet(["10.20.0.0/24", "10.30.0.9"])`` -> True."""

    def __init__(self, items: Iterable[str] = (), *, what: str = "address list") -> None:
        self.exact: set[str] = set()
        self._cache: dict[str, bool] = {}
        self.nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in items:
            text = str(item).strip()
            try:
                if "/" in text:
                    net = ipaddress.ip_network(text, strict=False)
                    if net.num_addresses == 1:
                        self.exact.add(str(net.network_address))
                    else:
                        self.nets.append(net)
                else:
                    self.exact.add(str(ipaddress.ip_address(text)))
            except ValueError as exc:
                raise ValueError(f"{what}: {text!r} is not an address or network ({exc})") from exc

    def __bool__(self) -> bool:
        return bool(self.exact or self.nets)

    def __contains__(self, ip: object) -> bool:
        if not isinstance(ip, str):
            return False
        if ip in self.exact:
            return True
        if not self.nets:
            return False
        hit = self._cache.get(ip)
        if hit is not None:
            return hit
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            hit = False
        else:
            hit = any(addr.version == n.version and addr in n for n in self.nets)
        if len(self._cache) >= 65_536:  # bounded: forget everything rather than grow
            self._cache.clear()
        self._cache[ip] = hit
        return hit
