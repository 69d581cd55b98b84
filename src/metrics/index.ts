/** Metrics of scores against labels. */
export type { ConfusionCounts, Labels, PrCurve, RocCurve, Scores, ThresholdChoice } from './ranking.js';
export { averagePrecision, bestThreshold, confusionAtThreshold, prCurve, precisionAtK, recallAtK, rocAuc, rocCurve } from './ranking.js';
