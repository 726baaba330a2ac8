/**
 * Traffic for the fault tests: workers that call `POST /v1/authorize` in a
 * loop, each call naming a resource of its own, so that an acknowledged call
 * (a 2xx) can be looked up afterwards in the decision log and the security
 * lake. Every answer is kept: its status, error code, `Retry-After`, and
 * whether it hung (no answer within `hangMs`).
 */
export interface Outcome {
  /** `lake.fault.r<n>`: the resource the call named. */
  readonly resource: string;
  /** HTTP status; 0 when the call never got an answer (a hang) or the connection failed. */
  readonly status: number;
  readonly code?: string;
  readonly retryAfter?: string;
  /** `hang`: no answer within hangMs; `network`: the socket failed. */
  readonly failure?: 'hang' | 'network';
  readonly ms: number;
}

export interface AuthorizeLoad {
  readonly outcomes: readonly Outcome[];
  /** Count of outcomes with this status so far. */
  count(status: number): number;
  /** Resolves when every worker has finished its current call. */
  stop(): Promise<void>;
}

export interface AuthorizeLoadOptions {
  readonly url: string;
  readonly token: string;
  readonly workers: number;
  /** A call with no answer after this long counts as a hang. */
  readonly hangMs: number;
  /** Prefix of the resources' table names, unique per run. */
  readonly prefix: string;
}

export function startAuthorizeLoad(options: AuthorizeLoadOptions): AuthorizeLoad {
  const outcomes: Outcome[] = [];
  let next = 0;
  let stopping = false;
  const one = async (): Promise<void> => {
    const resource = `lake.fault.${options.prefix}${next++}`;
    const t0 = performance.now();
    try {
      const res = await fetch(`${options.url}/v1/authorize`, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ principal: 'user:admin', action: 'SELECT', resource }),
        signal: AbortSignal.timeout(options.hangMs),
      });
      const json = (await res.json()) as { error?: { code?: string } };
      const retryAfter = res.headers.get('retry-after');
      outcomes.push({
        resource,
        status: res.status,
        ms: performance.now() - t0,
        ...(json.error?.code === undefined ? {} : { code: json.error.code }),
        ...(retryAfter === null ? {} : { retryAfter }),
      });
    } catch (e) {
      const hang = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      outcomes.push({ resource, status: 0, failure: hang ? 'hang' : 'network', ms: performance.now() - t0 });
    }
  };
  const worker = async (): Promise<void> => {
    while (!stopping) {
      await one();
      // A refused call is retried at once by a real client only after Retry-After; a short pause keeps the loop from spinning.
      if (outcomes.at(-1)?.status !== 200) await new Promise((r) => setTimeout(r, 20));
    }
  };
  const running = Array.from({ length: options.workers }, worker);
  return {
    outcomes,
    count: (status) => outcomes.filter((o) => o.status === status).length,
    stop: async () => {
      stopping = true;
      await Promise.all(running);
    },
  };
}
