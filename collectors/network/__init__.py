"""Network capture to ECS network events: flows, DNS, HTTP, TLS SNI, RTSP, discovery.

Frames are read raw (scapy's raw pcap/pcapng readers, or a live socket) and only the
headers and application heads needed are decoded, with ``struct``; see
:mod:`collectors.network.decoder` for what is emitted and why.

Example::

    from collectors.network import pcap_events
    for event in pcap_events("capture.pcap", max_flows=50_000):
        print(event["event"]["action"], event["source"]["ip"], event["destination"]["ip"])
"""
from __future__ import annotations

from collectors.network.community_id import community_id
from collectors.network.decoder import NetworkDecoder
from collectors.network.packet import SUPPORTED_LINKTYPES, dissect
from collectors.network.pcapfile import PcapFormatError, pcap_events, read_frames

__all__ = ["NetworkDecoder", "pcap_events", "read_frames", "PcapFormatError", "community_id", "dissect",
           "SUPPORTED_LINKTYPES"]
