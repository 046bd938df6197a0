import { Counter, Histogram, type Registry } from 'prom-client';

/**
 * Fraud scoring's own metrics, on the engine's registry. Rule hits by mode are what make `monitor`
 * useful: a rule can be watched on live traffic before it is allowed to cost anyone points.
 */
export type FraudMetrics = ReturnType<typeof createFraudMetrics>;

export function createFraudMetrics(registry: Registry) {
  return {
    ruleHits: new Counter({
      name: 'postback_engine_fraud_rule_hits_total',
      help: 'Fraud rules that fired, by reason code and mode (monitor hits cost no points)',
      labelNames: ['code', 'mode'] as const,
      registers: [registry],
    }),
    ruleErrors: new Counter({
      name: 'postback_engine_fraud_rule_errors_total',
      help: 'Fraud rules that threw while evaluating (recorded as not evaluated)',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    stateErrors: new Counter({
      name: 'postback_engine_fraud_state_errors_total',
      help: 'Failed reads or writes of the shared fraud counters, by operation',
      labelNames: ['op'] as const,
      registers: [registry],
    }),
    scoringDuration: new Histogram({
      name: 'postback_engine_fraud_scoring_duration_seconds',
      help: 'Time to score one postback, shared-state round trip included',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1],
      registers: [registry],
    }),
  };
}
