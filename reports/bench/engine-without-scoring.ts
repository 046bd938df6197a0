import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { connect } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import { createEngine } from '../../src/engine.js';
import { createLogger } from '../../src/logger.js';
import type { PostbackScorer } from '../../src/postback/types.js';

/**
 * The engine exactly as src/main.ts starts it against DATABASE_URL, except that its fraud scorer is
 * a constant: every postback accepted with score 0, no state read or written, no rule run. Only the
 * fraud-overhead bench starts it, to measure what scoring adds to the intake (fraud-overhead.ts).
 */

const unscored: PostbackScorer = { score: async () => ({ score: 0, decision: 'accepted', reasons: [], evidence: [] }) };

const config = loadConfig();
if (!config.databaseUrl) throw new Error('engine-without-scoring needs DATABASE_URL');
const log = createLogger(config.logLevel);
const sql = connect(config.databaseUrl);
await migrate(sql);
const engine = await createEngine(config, sql, log, { scorer: unscored });
const app = await buildApp(engine);
await app.listen({ port: config.port, host: config.host });

process.on('SIGTERM', async () => {
  await app.close();
  await engine.close();
  await sql.end({ timeout: 5 });
  process.exit(0);
});
