# syntax=docker/dockerfile:1
# citysoc as a container: `docker compose up` (docker-compose.yml) runs it against
# Elasticsearch; alone it runs on the embedded SQLite store in the /data volume:
#   docker build -t citysoc . && docker run -p 8000:8000 -p 5514:5514/udp -p 5514:5514 citysoc

# --- build: install the project and its dependencies into a venv (wheels only) ---------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/citysoc
WORKDIR /src
COPY . .
RUN /opt/citysoc/bin/pip install --upgrade pip \
 && /opt/citysoc/bin/pip install --only-binary=:all: . \
 && /opt/citysoc/bin/citysoc --version

# --- run: the venv, libpcap for scapy's capture filters, an unprivileged user ------------
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin citysoc \
 && mkdir -p /data && chown citysoc:citysoc /data
COPY --from=build /opt/citysoc /opt/citysoc
ENV PATH=/opt/citysoc/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CITYSOC_DATA=/data \
    CITYSOC_SYSLOG__HOST=0.0.0.0
USER citysoc
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000/tcp 5514/tcp 5514/udp
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["citysoc"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
