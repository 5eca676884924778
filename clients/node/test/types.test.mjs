// index.d.ts against a typed use of the client (test/types/usage.ts), with
// the TypeScript compiler pinned in package-lock.json (a devDependency:
// `make sdk-deps` installs it). Without it the test is skipped, or fails
// when CI=true.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const tsc = join(here, "..", "node_modules", "typescript", "bin", "tsc");

test("the types check a typed use of the client", (t) => {
  if (!existsSync(tsc)) {
    const why = "TypeScript is not installed in clients/node (run make sdk-deps, or npm ci --prefix clients/node)";
    if (process.env.CI === "true") assert.fail(why);
    t.skip(why);
    return;
  }
  const run = spawnSync(process.execPath, [tsc, "-p", join(here, "types/tsconfig.json")], { encoding: "utf8", timeout: 120_000 });
  assert.equal(run.status, 0, `${run.error ?? ""}${run.stdout}${run.stderr}`);
});
