# The engine as one container; docker-compose.yml runs two of them over one PostgreSQL and one Redis.
FROM node:20-slim

WORKDIR /app

# Dependencies first so a source change does not reinstall them. Dev dependencies are kept on
# purpose: `npm start` runs the TypeScript through tsx, there is no separate build output.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

COPY tsconfig.json ./
COPY sql ./sql
COPY src ./src

# Without DATABASE_URL the engine starts an embedded PostgreSQL under .data/, which must be writable.
RUN mkdir -p /app/.data && chown node:node /app/.data

ENV HOST=0.0.0.0 \
    PORT=8080
EXPOSE 8080
USER node

# Exec form, with `init: true` in compose: SIGTERM reaches npm -> tsx -> the engine, which drains and exits 0.
CMD ["npm", "start"]
