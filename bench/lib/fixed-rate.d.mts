// Types for fixed-rate.mjs's pure helpers, so the unit test can import it under strict TypeScript.
export const FIXED_RATE_PEERS: string[];
export const DEFAULT_FIXED_RATE: number;
export const HEADROOM: number;
export function fixedId(id: string): string;
export function isFixedRow(id: string): boolean;
export function fixedRateRows(rows: Record<string, string>, peers?: string[]): Record<string, string>;
export function plannedRows(selected: string[]): string[];
export interface FixedRateChoice {
  rate: number;
  requested: number;
  lowered: boolean;
  slowest: string;
  lowest: number;
}
export function chooseFixedRate(requested: number, capacities: Record<string, number>, headroom?: number): FixedRateChoice;
export function describeCommand(argv: string[] | undefined, root?: string): string;
export interface BodyBytes {
  kind: string;
  mean: number;
  min: number;
  max: number;
  count: number;
}
export function bodyBytes(argv: string[] | undefined): BodyBytes | null;
export function stats(values: number[]): { mean: number; min: number; max: number; count: number };
export function fixedRateNotes(args: {
  choice: FixedRateChoice;
  rows: Array<Record<string, unknown> & { id: string; row: string; "achieved /s": number }>;
  peerInfo: Record<string, { server?: string; load?: string; body?: BodyBytes | null }>;
  seconds: number;
}): string[];
