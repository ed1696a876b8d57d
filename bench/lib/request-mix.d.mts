// Types for request-mix.mjs, so the unit test can import it under strict TypeScript.
export interface MixShape {
  tenants: number;
  membersPerTenant: number;
  hotPrincipals: number;
  coldPrincipals: number;
}
export interface MixRequest {
  principal: { tenantId: string; actorId: string; actorType: string; requestId: string; source: string };
  action: string;
  resource: { type: string; id: string; tenantId: string };
}
export const SHAPE: MixShape;
export function prng(seed: number): () => number;
export function tenantId(i: number): string;
export function actorId(t: number, k: number): string;
export function storeSeed(seed?: number, shape?: MixShape): {
  tenants: { id: string; planCode: string; billingStatus: string }[];
  memberships: { tenantId: string; actorId: string; role: string; status: string }[];
  plans: { code: string }[];
  [key: string]: unknown;
};
export function requestMix(options: {
  seed?: number;
  count: number;
  principals: number;
  actions: string[];
  shape?: MixShape;
  sequential?: boolean;
}): MixRequest[];
