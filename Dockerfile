# The engine as a production image: TypeScript compiled in a build stage, run by plain Node on a
# current LTS with production dependencies only, as a non-root user. docker-compose.yml runs two of
# them over one PostgreSQL and one Redis. test/compose-schema.test.ts checks this file and the compose
# file without a Docker daemon (CI has none).

FROM node:22-slim AS build
WORKDIR /app
# Dependencies first so that a source change does not reinstall them. patches/ is applied by npm ci's
# postinstall (patch-package; patches/README.md says why each patch exists).
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
# dist/: the compiled engine beside the UI's static files, the fraud data and the Redoc bundle.
RUN npm run build

FROM node:22-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY sql ./sql
COPY --from=build /app/dist ./dist

# Writable by the engine only: reconciliation reports (REPORTS_DIR) and, without DATABASE_URL, the
# embedded PostgreSQL's data (DATA_DIR). The code and dependencies stay root-owned and read-only to it.
RUN mkdir -p /app/reports /app/.data && chown node:node /app/reports /app/.data
VOLUME ["/app/reports"]

ENV HOST=0.0.0.0 \
    PORT=8080 \
    REPORTS_DIR=/app/reports \
    DATA_DIR=/app/.data
EXPOSE 8080
USER node

# For `docker run` without compose (compose sets its own): slim images have no curl, Node's fetch asks /readyz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# node itself is PID 1's child (compose sets `init: true`): SIGTERM reaches the engine, which drains and exits 0.
CMD ["node", "dist/main.js"]
