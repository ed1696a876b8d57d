import fc from "fast-check";
import { LRUCache } from "lru-cache";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DownloadUrlRejected,
  DownloadUrlSigner,
  objectKeyTenant,
  requireTenantObjectKey,
  tenantKey,
  tenantObjectKey,
  type TrustedTenantContext,
} from "../../src/client/index.js";
import { startContextSource, type ContextSource } from "../support/tenant-contexts.js";
import { MINUTE, testClock } from "../support/test-time.js";

// Cache keys, object keys and signed download URLs, from contexts a real sidecar resolved.
let source: ContextSource;
let acme: TrustedTenantContext;
let globex: TrustedTenantContext;
let initech: TrustedTenantContext;

beforeAll(async () => {
  source = await startContextSource();
  acme = await source.contextOf("ten_acme", "usr_alice");
  globex = await source.contextOf("ten_globex", "usr_carol");
  initech = await source.contextOf("ten_initech", "usr_dave");
});
afterAll(async () => {
  await source.close();
});

describe("tenantKey", () => {
  it("keeps ('a:b') and ('a', 'b') apart", () => {
    expect(tenantKey(acme, "a:b")).not.toBe(tenantKey(acme, "a", "b"));
    expect(tenantKey(acme, "a%3Ab")).not.toBe(tenantKey(acme, "a:b"));
    expect(tenantKey(acme, "dashboard", "prj_1")).toBe("tenant:ten_acme:dashboard:prj_1");
  });

  it("never gives two (tenant, parts) lists the same key", () => {
    const contexts = [acme, globex, initech];
    const part = fc.oneof(fc.string({ unit: "binary" }), fc.constantFrom(":", "%", "%3A", "tenant", "ten_globex", ""), fc.integer());
    const input = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.array(part, { maxLength: 4 }));
    fc.assert(
      fc.property(input, input, ([t1, p1], [t2, p2]) => {
        const same = t1 === t2 && JSON.stringify(p1.map(String)) === JSON.stringify(p2.map(String));
        expect(tenantKey(contexts[t1]!, ...p1) === tenantKey(contexts[t2]!, ...p2)).toBe(same);
      }),
      { numRuns: 2_000 },
    );
  });

  it("lets no tenant spell another tenant's key", () => {
    // The obvious attempt: acme's parts that start with globex's prefix.
    const globexKey = tenantKey(globex, "dashboard");
    expect(tenantKey(acme, ...globexKey.split(":"))).not.toBe(globexKey);
    expect(tenantKey(acme, ...globexKey.split(":")).startsWith("tenant:ten_acme:")).toBe(true);
  });

  it("keeps a dashboard cache from serving another tenant", () => {
    const cache = new LRUCache<string, { tenant: string; projects: number }>({ max: 100 });
    const dashboard = (context: TrustedTenantContext) => {
      const key = tenantKey(context, "dashboard", "summary");
      const hit = cache.get(key);
      if (hit) return hit;
      const fresh = { tenant: context.tenantId, projects: context.tenantId.length };
      cache.set(key, fresh);
      return fresh;
    };
    expect(dashboard(acme).tenant).toBe("ten_acme");
    expect(dashboard(globex).tenant).toBe("ten_globex");
    expect(dashboard(acme).tenant).toBe("ten_acme");
    expect(cache.size).toBe(2);
  });

  it("refuses a hand-built context and a part that is not a string or number", () => {
    expect(() => tenantKey({ ...acme }, "x")).toThrow(expect.objectContaining({ code: "TENANT_CONTEXT_MISSING" }));
    expect(() => tenantKey(acme, "x", { toString: () => "y" } as never)).toThrow(expect.objectContaining({ code: "TENANT_SCOPE_INVALID", field: "parts[1]" }));
    expect(() => tenantKey(acme, Number.NaN)).toThrow(expect.objectContaining({ field: "parts[0]" }));
  });
});

describe("object keys", () => {
  it("live under the tenant's prefix, and no segment climbs out of it", () => {
    expect(tenantObjectKey(acme, "reports", "rep_1.csv")).toBe("tenants/ten_acme/reports/rep_1.csv");
    const sneaky = tenantObjectKey(acme, "../ten_globex", "x");
    expect(sneaky).toBe("tenants/ten_acme/..%2Ften_globex/x");
    expect(objectKeyTenant(sneaky)).toBe("ten_acme");
    for (const bad of ["", ".", "..", "a\nb"]) expect(() => tenantObjectKey(acme, bad)).toThrow(expect.objectContaining({ code: "TENANT_SCOPE_INVALID" }));
  });

  it("from outside are checked against the context's tenant", () => {
    const key = tenantObjectKey(globex, "reports", "rep_b1.csv");
    expect(requireTenantObjectKey(globex, key)).toBe(key);
    expect(() => requireTenantObjectKey(acme, key)).toThrow(expect.objectContaining({ code: "TENANT_MISMATCH" }));
    expect(() => requireTenantObjectKey(acme, "reports/rep_b1.csv")).toThrow(expect.objectContaining({ code: "TENANT_MISMATCH" }));
  });
});

describe("signed download URLs", () => {
  const oldKey = { id: "k2026a", secret: "old-secret-old-secret-old-secret-0000" };
  const newKey = { id: "k2026b", secret: "new-secret-new-secret-new-secret-1111" };
  const base = "https://files.example.test/download";
  const setup = () => {
    const clock = testClock();
    const signer = new DownloadUrlSigner({ keys: [oldKey, newKey], currentKeyId: newKey.id, baseUrl: base, clock });
    const key = tenantObjectKey(acme, "reports", "rep_a1.csv");
    return { clock, signer, key, url: signer.sign(acme, key, 5 * MINUTE) };
  };
  const rejection = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(DownloadUrlRejected);
      return (error as DownloadUrlRejected).reason;
    }
    return "accepted";
  };
  const edited = (url: string, name: string, value: string) => {
    const u = new URL(url);
    u.searchParams.set(name, value);
    return u.toString();
  };

  it("verify for the tenant, object and expiry they were signed for", () => {
    const { clock, signer, key, url } = setup();
    expect(signer.verify(url, acme)).toEqual({ tenantId: "ten_acme", objectKey: key, expiresAt: clock.now() + 5 * MINUTE, keyId: newKey.id });
  });

  it("are rejected for another tenant", () => {
    const { signer, url } = setup();
    expect(rejection(() => signer.verify(url, globex))).toBe("wrong_tenant");
  });

  it("are rejected from the expiry on, by the injected clock", () => {
    const { clock, signer, url } = setup();
    clock.advance(5 * MINUTE - 1);
    expect(signer.verify(url, acme).tenantId).toBe("ten_acme");
    clock.advance(1);
    expect(rejection(() => signer.verify(url, acme))).toBe("expired");
  });

  it("are rejected after any tampering", () => {
    const { signer, url } = setup();
    const globexKey = tenantObjectKey(globex, "reports", "rep_b1.csv");
    expect(rejection(() => signer.verify(edited(url, "object", tenantObjectKey(acme, "reports", "rep_a2.csv")), acme))).toBe("bad_signature");
    expect(rejection(() => signer.verify(edited(edited(url, "tenant", "ten_globex"), "object", globexKey), globex))).toBe("bad_signature");
    expect(rejection(() => signer.verify(edited(url, "expires", String(Number(new URL(url).searchParams.get("expires")) + 3600)), acme))).toBe("bad_signature");
    expect(rejection(() => signer.verify(edited(url, "sig", "A" + new URL(url).searchParams.get("sig")!.slice(1)), acme))).toBe("bad_signature");
    expect(rejection(() => signer.verify(edited(url, "kid", oldKey.id), acme))).toBe("bad_signature");
    expect(rejection(() => signer.verify(url + "&object=" + encodeURIComponent(globexKey), acme))).toBe("malformed");
  });

  it("rotate: old-key URLs verify while the key is configured, unknown key ids never", () => {
    const { clock, key } = setup();
    const before = new DownloadUrlSigner({ keys: [oldKey], currentKeyId: oldKey.id, baseUrl: base, clock });
    const oldUrl = before.sign(acme, key, MINUTE);
    const rotated = new DownloadUrlSigner({ keys: [oldKey, newKey], currentKeyId: newKey.id, baseUrl: base, clock });
    expect(rotated.verify(oldUrl, acme).keyId).toBe(oldKey.id);
    expect(new URL(rotated.sign(acme, key, MINUTE)).searchParams.get("kid")).toBe(newKey.id);
    const retired = new DownloadUrlSigner({ keys: [newKey], currentKeyId: newKey.id, baseUrl: base, clock });
    expect(rejection(() => retired.verify(oldUrl, acme))).toBe("unknown_key");
  });

  it("are only signed for the context's own objects, for at most maxTtlMs", () => {
    const { signer } = setup();
    expect(() => signer.sign(acme, tenantObjectKey(globex, "x"), MINUTE)).toThrow(expect.objectContaining({ code: "TENANT_MISMATCH" }));
    expect(() => signer.sign({ ...acme }, tenantObjectKey(acme, "x"), MINUTE)).toThrow(expect.objectContaining({ code: "TENANT_CONTEXT_MISSING" }));
    expect(() => signer.sign(acme, tenantObjectKey(acme, "x"), 2 * 60 * MINUTE)).toThrow(expect.objectContaining({ field: "ttlMs" }));
    expect(() => signer.sign(acme, tenantObjectKey(acme, "x"), 10)).toThrow(expect.objectContaining({ field: "ttlMs" }));
  });

  it("refuse a lifetime no signer of this configuration would give", () => {
    const { clock, key } = setup();
    const generous = new DownloadUrlSigner({ keys: [newKey], currentKeyId: newKey.id, baseUrl: base, clock, maxTtlMs: 24 * 60 * MINUTE });
    const strict = new DownloadUrlSigner({ keys: [newKey], currentKeyId: newKey.id, baseUrl: base, clock, maxTtlMs: MINUTE });
    expect(rejection(() => strict.verify(generous.sign(acme, key, 60 * MINUTE), acme))).toBe("expired");
  });

  it("name the configuration field at fault", () => {
    const make = (options: Partial<ConstructorParameters<typeof DownloadUrlSigner>[0]>) => () =>
      new DownloadUrlSigner({ keys: [newKey], currentKeyId: newKey.id, baseUrl: base, ...options });
    expect(make({ keys: [] })).toThrow(expect.objectContaining({ field: "keys" }));
    expect(make({ keys: [{ id: "k", secret: "short" }], currentKeyId: "k" })).toThrow(expect.objectContaining({ field: "keys[0].secret" }));
    expect(make({ keys: [newKey, newKey] })).toThrow(expect.objectContaining({ field: "keys[1].id" }));
    expect(make({ currentKeyId: "nope" })).toThrow(expect.objectContaining({ field: "currentKeyId" }));
    expect(make({ baseUrl: "files/download" })).toThrow(expect.objectContaining({ field: "baseUrl" }));
    expect(make({ baseUrl: `${base}?a=1` })).toThrow(expect.objectContaining({ field: "baseUrl" }));
  });

  it("reject garbage as malformed", () => {
    const { signer } = setup();
    expect(rejection(() => signer.verify("not a url", acme))).toBe("malformed");
    expect(rejection(() => signer.verify(`${base}?tenant=ten_acme`, acme))).toBe("malformed");
  });
});
