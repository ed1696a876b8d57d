// Types for cluster-stats.mjs, so the unit test can import it under strict TypeScript.
export function metricValue(text: string, name: string): number | undefined;
export function spread(values: number[]): { p50: number; p99: number; max: number; n: number };
export interface ExactnessRow {
  tenant: string;
  allowed: number;
  counters: (number | undefined)[];
  exact: boolean;
}
export function exactness(input: { allowed: Record<string, number>; used: Record<string, number>[]; limit: number }): { rows: ExactnessRow[]; exact: boolean };
