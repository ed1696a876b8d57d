import type { ApiKeyStore } from "../identity/api-keys.js";
import type { RevisionWriter } from "../store/revision-writer.js";
import { objectBody, type CommandKind } from "../store/store-command.js";
import type { Stores } from "../store/stores.js";
import { applySeed, type StoreSeed } from "./store-seed.js";

/**
 * A whole seed as one command (v1): how replicated mode writes the demo
 * dataset, once per stream. API keys are refused: their stored hashes are
 * keyed with each sidecar's own secret, so one entry cannot carry them.
 */
export function seedCommand(writer: RevisionWriter, stores: Stores, apiKeys?: ApiKeyStore): CommandKind<StoreSeed, number> {
  return {
    type: "store.seed",
    version: 1,
    decode(body) {
      const seed = objectBody(body) as StoreSeed;
      if (seed.apiKeys?.length) throw new Error("a replicated seed cannot carry API keys");
      return seed;
    },
    apply: (_tx, seed) => applySeed(writer, stores, seed, apiKeys),
  };
}
