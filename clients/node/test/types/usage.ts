// Compiled with tsc --noEmit by test/types.test.mjs: the README's usage type-checks.
import { Sidecar, SidecarError, RateLimitError, UnavailableError, type SidecarResponse } from "agent-sidecar";

export async function handle(incoming: Record<string, string | string[] | undefined>): Promise<string> {
  const sidecar = Sidecar.fromEnv();
  await using heartbeats = sidecar.startHeartbeats({ intervalMs: 5000, note: "starting" });
  heartbeats.progress(0).increment().note("handled 1 task").metrics({ tasks: 1, model: "gpt-4o", warm: true }).status("ok");

  return sidecar.withTraceContext(incoming, async () => {
    try {
      const res: SidecarResponse = await sidecar.call("researcher", "/task", { json: { input: "x" }, timeout: 30_000 });
      const fromFallback: boolean = res.fallback;
      const notes = res.json<{ output: string }>().output;
      const answer = await sidecar.chat("gpt-4o", [{ role: "user", content: notes }], { maxTokens: 400 });
      const degraded: boolean = answer.degraded;
      return `${answer.model} ${degraded} ${fromFallback} ${answer.content}`;
    } catch (err) {
      if (err instanceof RateLimitError || err instanceof UnavailableError) return `retry in ${err.retryAfter ?? 1}s`;
      if (err instanceof SidecarError) return `${err.status} ${err.type}: ${err.message} ${err.traceId}`;
      throw err;
    }
  });
}

// @ts-expect-error a status the sidecar refuses
Sidecar.fromEnv().startHeartbeats().status("great");
// @ts-expect-error the upstream comes first
Sidecar.fromEnv().call({ json: {} });
