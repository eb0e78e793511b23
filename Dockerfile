# syntax=docker/dockerfile:1
# One image for every program of CryptoPipeline; the command selects which:
#   cryptopipeline-ingestor | cryptopipeline-signaler | cryptopipeline-bot |
#   cryptopipeline-operator | coinbase-sim | cryptopipeline
# The operator's Deployments and the Helm chart set `command:`; there is no ENTRYPOINT.
#   docker build -t cryptopipeline:0.1.0 .                 (the runtime image)
#   docker build --target dev -t cryptopipeline:dev .      (Tilt's live-update image)

ARG PYTHON=python:3.11-slim-bookworm

# --- build: the project and its dependencies in a virtual environment -----------------
FROM ${PYTHON} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# dependencies first (cached until pyproject.toml changes), then the code
COPY pyproject.toml README.md ./
RUN mkdir -p workloads/cryptopipeline operator/cryptopipeline_operator \
 && touch workloads/cryptopipeline/__init__.py operator/cryptopipeline_operator/__init__.py \
 && pip install . && pip uninstall -y cryptopipeline
COPY workloads/ workloads/
COPY operator/ operator/
RUN pip install --no-deps . && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

# --- runtime: slim, non-root (uid 10001, as the operator's pods run) ------------------
FROM ${PYTHON} AS runtime
RUN groupadd --gid 10001 app && useradd --uid 10001 --gid 10001 --no-create-home \
      --home-dir /app --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
# the built-in ksqlDB migrations (CRYPTOPIPELINE_OPERATOR__MIGRATIONS_DIR=/app/ksqldb)
COPY ksqldb/ /app/ksqldb/
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 10001:10001
# ops ports: ingestor 9101, signaler 9102, bot 9103, operator metrics 9104 and health 8080
EXPOSE 9101 9102 9103 9104 8080
CMD ["cryptopipeline", "--help"]

# --- dev: runtime + Tilt's live update (never deployed outside local development) -----
# Each program runs through docker/dev-run, which copies the source to /tmp/live (the pods'
# writable emptyDir; the root filesystem stays read-only), runs it from there and restarts
# it when Tilt touches /tmp/live/.restart after syncing changed files.
FROM runtime AS dev
COPY --chown=10001:10001 workloads/ /app/src/workloads/
COPY --chown=10001:10001 operator/ /app/src/operator/
COPY docker/dev-run /app/dev-run
USER 0:0
RUN mkdir /app/bin && for prog in cryptopipeline-ingestor cryptopipeline-signaler \
      cryptopipeline-bot cryptopipeline-operator coinbase-sim cryptopipeline; do \
      ln -s /app/dev-run /app/bin/$prog; done
USER 10001:10001
ENV PATH=/app/bin:/opt/venv/bin:$PATH
