// index.d.ts against a typed use of the client (test/types/usage.ts), with
// TypeScript 5 through npx; skipped when npx cannot get TypeScript.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

test("the types check a typed use of the client", (t) => {
  const run = spawnSync("npx", ["-y", "--prefer-offline", "-p", "typescript@5", "tsc", "-p", join(here, "types/tsconfig.json")], {
    encoding: "utf8",
    timeout: 240_000,
  });
  const out = `${run.stdout}${run.stderr}`;
  if (run.error || /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|E404|could not determine executable/i.test(out)) {
    t.skip(`TypeScript is not available: ${run.error?.message ?? out.trim().split("\n")[0]}`);
    return;
  }
  assert.equal(run.status, 0, out);
});
