# syntax=docker/dockerfile:1
# Multi-stage: the OPA CLI from its official image compiles the policies, a
# Node stage builds everything, and a slim non-root stage runs the sidecar.

FROM openpolicyagent/opa:1.22.3-static AS opa

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 compiles from source when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
    && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
# scripts/ensure-tool.sh finds this opa on PATH at the pinned version.
COPY --from=opa /opa /usr/local/bin/opa
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    BULKHEAD_DB=/data/bulkhead.db \
    BULKHEAD_GRPC_ADDR=0.0.0.0:50051 \
    BULKHEAD_HTTP_ADDR=0.0.0.0:8080
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/proto ./proto
RUN mkdir /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 50051 8080
# Binding 0.0.0.0 requires BULKHEAD_CALLER_TOKENS; the sidecar refuses to start without it.
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve"]
