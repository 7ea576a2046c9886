#!/usr/bin/env bash
# One-shot set-up of a fresh Elasticsearch for docker-compose.yml (the `es-setup` service).
#
# Waits for the cluster, then (idempotently, safe to re-run):
#   1. sets the password of the built-in kibana_system user, so Kibana can start;
#   2. creates the role citysoc_writer: what citysoc needs and nothing more (install its
#      ILM policy and templates; write, read and purge its own data stream);
#   3. creates (or updates) the user citysoc with that role.
# citysoc then installs its ILM policy, templates and data stream itself on first use.
#
# Environment: ES_URL (default http://elasticsearch:9200), ELASTIC_PASSWORD,
# KIBANA_PASSWORD, CITYSOC_ES_PASSWORD, CITYSOC_PREFIX (default citysoc),
# ES_SETUP_TIMEOUT seconds to wait for the cluster (default 300).
set -euo pipefail

ES_URL="${ES_URL:-http://elasticsearch:9200}"
PREFIX="${CITYSOC_PREFIX:-citysoc}"
TIMEOUT="${ES_SETUP_TIMEOUT:-300}"

fail() { echo "es-setup: $*" >&2; exit 1; }

for var in ELASTIC_PASSWORD KIBANA_PASSWORD CITYSOC_ES_PASSWORD; do
  value="${!var:-}"
  [ -n "$value" ] || fail "$var is not set: put it in .env (see deploy/env.example)"
  [ "${#value}" -ge 8 ] || fail "$var is shorter than 8 characters; choose a longer password"
  case "$value" in
    *\"*|*\\*) fail "$var must not contain \" or \\ (it is written into JSON)";;
  esac
done
case "$PREFIX" in
  *[!a-z0-9_-]*|"") fail "CITYSOC_PREFIX must be lower-case letters, digits, - or _";;
esac

# es METHOD PATH [JSON]: one authenticated call; fails on an HTTP error with the body shown.
es() {
  local method="$1" path="$2" body="${3:-}" out code
  out="$(mktemp)"
  if [ -n "$body" ]; then
    code="$(curl -sS -o "$out" -w '%{http_code}' -u "elastic:${ELASTIC_PASSWORD}" -X "$method" \
      -H 'Content-Type: application/json' --data-binary "$body" "${ES_URL}${path}")" || code=000
  else
    code="$(curl -sS -o "$out" -w '%{http_code}' -u "elastic:${ELASTIC_PASSWORD}" -X "$method" "${ES_URL}${path}")" || code=000
  fi
  if [ "${code:0:1}" != 2 ]; then
    echo "es-setup: $method $path answered $code: $(cat "$out")" >&2
    rm -f "$out"
    return 1
  fi
  rm -f "$out"
}

echo "es-setup: waiting for Elasticsearch at $ES_URL"
deadline=$(( $(date +%s) + TIMEOUT ))
until es GET "/_cluster/health?wait_for_status=yellow&timeout=5s" 2>/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "Elasticsearch at $ES_URL did not answer within ${TIMEOUT}s (check ELASTIC_PASSWORD and the elasticsearch service's log)"
  sleep 2
done

echo "es-setup: setting the kibana_system password"
es POST /_security/user/kibana_system/_password "{\"password\":\"${KIBANA_PASSWORD}\"}"

echo "es-setup: creating role citysoc_writer and user citysoc"
es PUT /_security/role/citysoc_writer "{
  \"cluster\": [\"monitor\", \"manage_ilm\", \"manage_index_templates\"],
  \"indices\": [{
    \"names\": [\"${PREFIX}-*\"],
    \"privileges\": [\"create_doc\", \"create_index\", \"read\", \"view_index_metadata\", \"delete\"]
  }]
}"
es PUT /_security/user/citysoc "{
  \"password\": \"${CITYSOC_ES_PASSWORD}\",
  \"roles\": [\"citysoc_writer\"],
  \"full_name\": \"citysoc SOC service\"
}"
echo "es-setup: done"
