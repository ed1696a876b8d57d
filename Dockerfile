# syntax=docker/dockerfile:1
# Multi-stage: the OPA CLI from its official image compiles the policies, a
# Node stage builds and packs the project, a second Node stage installs the
# packed tarball with production dependencies only, and a slim non-root stage
# runs it. The runtime therefore holds exactly what `npm pack` ships, which is
# what `.ci/run` checks without a Docker engine (scripts/check-packed-install.mjs:
# the same pack, the same `npm install --omit=dev`, then serve + a real Check).

FROM openpolicyagent/opa:1.22.3-static AS opa

FROM node:20-bookworm-slim AS build
WORKDIR /src
# better-sqlite3 compiles from source when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
# scripts/ensure-tool.sh finds this opa on PATH at the pinned version.
COPY --from=opa /opa /usr/local/bin/opa
COPY . .
RUN npm run build && npm pack --pack-destination /tmp && mv /tmp/bulkhead-*.tgz /tmp/bulkhead.tgz

FROM node:20-bookworm-slim AS install
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /tmp/bulkhead.tgz /tmp/bulkhead.tgz
RUN echo '{"name":"bulkhead-runtime","private":true}' > package.json \
    && npm install --omit=dev --no-audit --no-fund /tmp/bulkhead.tgz

FROM node:20-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    BULKHEAD_DB=/data/bulkhead.db \
    BULKHEAD_GRPC_ADDR=0.0.0.0:50051 \
    BULKHEAD_HTTP_ADDR=0.0.0.0:8080
COPY --from=install /app /app
# `bulkhead policy build|test` inside the image use the pinned OPA on PATH.
COPY --from=opa /opa /usr/local/bin/opa
RUN mkdir /data && chown node:node /data \
    && ln -s /app/node_modules/.bin/bulkhead /usr/local/bin/bulkhead
USER node
VOLUME /data
EXPOSE 50051 8080
# /readyz is 200 once a policy bundle is loaded and the store is open; the
# same probe serves Kubernetes (httpGet /readyz on 8080; /healthz for liveness).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:8080/readyz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Binding 0.0.0.0 requires BULKHEAD_CALLER_TOKENS; the sidecar refuses to start without it.
ENTRYPOINT ["bulkhead"]
CMD ["serve"]
