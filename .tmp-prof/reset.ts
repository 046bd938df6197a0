import { connect } from '../src/db/database.js';
const sql = connect(process.argv[2] as string, { max: 1 });
await sql`delete from conversion_status_history where source = 'pixel'`;
await sql`delete from conversions where source = 'pixel'`;
await sql`update deliveries set refire_window = null, refired_at = null, next_attempt_at = now() + interval '1 hour' where state = 'failed'`;
await sql`vacuum analyze conversions`;
await sql.end();
