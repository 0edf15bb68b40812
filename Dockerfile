# ---- build: compile TypeScript, then drop dev dependencies and what the runtime does not read ----
FROM node:24-bookworm-slim AS build
WORKDIR /app

# Dependencies first, so that source changes do not invalidate this layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

# Everything else the build needs (.dockerignore keeps out node_modules, dist, tests, docs, .git).
# tsconfig.json compiles src/ and bench/; bench/ may be absent.
COPY . .
RUN npm run build \
 && mkdir -p schema \
 && node dist/src/cli/main.js schema > schema/pipeline.schema.json \
 && node dist/src/cli/main.js validate -c config/orders-tumbling.yaml \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf dist/bench \
 && find dist node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete \
 && node dist/src/cli/main.js --version

# ---- runtime: production dependencies, compiled code, examples, schema ----
FROM node:24-bookworm-slim

# docker build --build-arg VERSION=$(node -p "require('./package.json').version") \
#   --build-arg REVISION=$(git rev-parse HEAD) --build-arg SOURCE=<repository URL> -t streamshard .
ARG VERSION=0.1.0
ARG REVISION=""
ARG SOURCE=""
LABEL org.opencontainers.image.title="streamshard" \
      org.opencontainers.image.description="High-throughput Redis Streams processor: key-ordered worker-thread shards, event-time windows, dedup, atomic commit with ack." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT"

ENV NODE_ENV=production
WORKDIR /app

COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/config ./config
COPY --from=build /app/schema ./schema

USER node

# /metrics, /healthz, /readyz (metrics.port; the examples read ${METRICS_PORT:-9464}).
EXPOSE 9464

# No curl in slim images: ask node itself. Keep METRICS_PORT equal to the config's metrics.port.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.METRICS_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"

# SIGTERM drains in-flight batches within shutdown.timeout (default 10s): give `docker stop` more time.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["run", "-c", "/config/pipeline.yaml"]
