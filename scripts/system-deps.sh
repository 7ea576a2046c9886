#!/usr/bin/env bash
# Installs the Debian packages that tests and benchmarks drive for real (rsyslog, nftables, libpcap, ...).
# Idempotent and quiet: it does nothing when every package is already present.
set -euo pipefail
PKGS=(libpcap0.8 rsyslog rsyslog-elasticsearch rsyslog-relp tcpreplay openssl curl nmap hydra iproute2 nftables postgresql mariadb-server chromium fonts-noto-core poppler-utils fonts-dejavu-core)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "system-deps: missing ${missing[*]} and cannot apt-get here; tests needing them will skip" >&2
  exit 0
fi
echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
