/**
 * `steward authorize` on an embedded workspace without opening it: the world
 * comes from the cache the last clean close wrote (src/workspace/world-cache.ts),
 * the answer from the same engine and route logic as the server's
 * (src/governance/authorize.ts), and the decision is spooled for the log
 * (src/store/decision-spool.ts) before it is printed.
 *
 * Only the local admin's `authorize` goes this way; with no usable cache the
 * command opens the workspace as every other command does.
 */
import { isStewardError, StewardError } from '../errors.js';
import { LOCAL_ADMIN } from '../server/actor.js';
import { zodToStewardError } from '../server/zod-error.js';
import { answerAuthorize, AuthorizeBody } from '../governance/authorize.js';
import { evaluatorFor } from '../experiments/experiment-evaluator.js';
import { readWorldCache } from '../workspace/world-cache.js';
import { spoolDecision } from '../store/decision-spool.js';
import type { Client, Method } from './client.js';

export const AUTHORIZE_PATH = '/v1/authorize';

/**
 * A client answering `POST /v1/authorize` from the world cache, or null when
 * there is no cache to trust. A cache the engine cannot decide with (written
 * by hand, or by a bug) is not an answer: the call then goes to `opened`, the
 * workspace opened as usual.
 */
export async function cachedDecisionClient(home: string, opened: () => Promise<Client>): Promise<Client | null> {
  const cache = await readWorldCache(home);
  if (cache === null) return null;
  let fallback: Client | undefined;
  const decide = (body: unknown): ReturnType<typeof answerAuthorize> => {
    const parsed = AuthorizeBody.safeParse(body);
    if (!parsed.success) throw zodToStewardError('body', parsed.error);
    return answerAuthorize(evaluatorFor(cache.world), LOCAL_ADMIN, parsed.data);
  };
  return {
    target: `embedded workspace ${home} (policy version ${cache.version}, from the world cache)`,
    call: async <T>(method: Method, path: string, body?: unknown): Promise<T> => {
      if (method !== 'POST' || path !== AUTHORIZE_PATH) throw new StewardError('STEWARD_E_INTERNAL', `the world cache answers only POST ${AUTHORIZE_PATH}`);
      let answer: ReturnType<typeof answerAuthorize>;
      try {
        answer = decide(body);
      } catch (e) {
        if (isStewardError(e)) throw e;
        fallback ??= await opened();
        return fallback.call<T>(method, path, body);
      }
      await spoolDecision(home, answer.entry);
      return answer.json as T;
    },
    close: async () => {
      await fallback?.close();
    },
  };
}
