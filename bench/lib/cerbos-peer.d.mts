// Types for cerbos-peer.mjs, so the tests can import it under strict TypeScript.
export interface CerbosAttrs {
  [name: string]: unknown;
}
export interface CerbosCheckRequest {
  requestId: string;
  principal: {
    id: string;
    roles: string[];
    attr: {
      tenant_id: string;
      role: string;
      membership_status: string;
      tenant_status: string;
      billing_access: "full" | "read_only" | "none";
      entitlements: string[];
      features: Record<string, boolean>;
      limits: Record<string, number>;
      usage: Record<string, number>;
    };
  };
  resources: { actions: string[]; resource: { kind: string; id: string; attr: { tenant_id: string; consume: number; role: string } } }[];
}
export interface CerbosSchemas {
  encode(json: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}
export const CERBOS_METHOD: string;
export const CERBOS_VERSION: string;
export function cerbosBinary(root: string): string;
export function cerbosCheck(input: unknown, requestId?: string): CerbosCheckRequest;
export function cerbosAllows(request: CerbosCheckRequest, response: unknown): boolean;
export function startCerbos(options: { root: string; cores?: string | null }): Promise<{ address: string; stop: () => Promise<void> }>;
export function cerbosSchemas(address: string): Promise<CerbosSchemas>;
export function cerbosAgreement(options: {
  address: string;
  schemas: CerbosSchemas;
  requests: CerbosCheckRequest[];
  expected: { allow: boolean; reasons: string[] }[];
  examples?: number;
}): Promise<{ count: number; examples: { index: number; action: string; bulkhead: boolean; cerbos: boolean; bulkheadReasons: string[] }[] }>;
export function bodySizes(encode: (message: never) => Uint8Array, messages: unknown[]): { mean: number; max: number };
