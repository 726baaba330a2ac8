/**
 * Waits for something a background process does (a scheduler tick, a server
 * exiting): polls `ok` until it holds, and fails naming `what` after
 * `timeoutMs`. Returns when it was first seen (Date.now()), for lag checks.
 */
export async function pollUntil(what: string, ok: () => Promise<boolean>, timeoutMs = 30_000, intervalMs = 25): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ok()) return Date.now();
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
