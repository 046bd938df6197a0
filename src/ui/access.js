// Which sections of the page a token may use, asked of the API itself (its 401 and 403 answers), so the
// page never hard-codes a role table that could drift from the server's.

import { ApiFailure, api } from './api.js';

/**
 * Which sections this token may use, from the API's own 401/403 answers. Each probe changes nothing: the
 * review probe names a conversion that cannot exist and sends an empty body, so the role check (which runs
 * first, before the body is read) is the only thing that can answer 403.
 */
export async function probeAccess() {
  const now = new Date();
  const hourAgo = new Date(now.getTime() - 3600_000);
  const outcome = async (method, path, body) => {
    try {
      await api(method, path, body, { quiet401: true });
      return 'ok';
    } catch (err) {
      if (err instanceof ApiFailure && err.status === 401) throw err;
      if (err instanceof ApiFailure && err.status === 403) return 'forbidden';
      if (err instanceof ApiFailure && err.status === 0) throw err;
      return 'ok'; // 400/404/409: the role check passed
    }
  };
  const [read, decide, runs, sent, report, attempts, rates, changes, ruleLabels] = await Promise.all([
    outcome('GET', '/v1/conversions?decision=flagged&limit=1'),
    outcome('POST', '/v1/conversions/cv_ui_role_probe/review', {}),
    outcome('GET', '/v1/reconciliations?limit=1'),
    outcome('GET', '/v1/deliveries?limit=1'),
    outcome('GET', `/v1/reports/payouts?${new URLSearchParams({ from: hourAgo.toISOString(), to: now.toISOString(), format: 'json' })}`),
    outcome('GET', '/v1/postback-attempts?limit=1'),
    outcome('GET', '/v1/fx-rates?limit=1'),
    outcome('GET', '/v1/audit?limit=1'),
    outcome('GET', '/v1/fraud/rules/quality'),
  ]);
  return {
    review: read === 'ok' && decide === 'ok',
    conversions: read === 'ok',
    deliveries: sent === 'ok',
    reconciliation: runs === 'ok',
    payouts: report === 'ok',
    refused: attempts === 'ok',
    fx: rates === 'ok',
    audit: changes === 'ok',
    quality: ruleLabels === 'ok',
  };
}
