/**
 * A zod failure as the one Steward validation error: every issue with its
 * path (`body.grants.2.resource`), the first in the message. Its own module so
 * that services validating documents outside a route (dashboards) share it
 * without importing the app.
 */
import type { z } from 'zod';
import { StewardError } from '../errors.js';

export function zodToStewardError(where: string, error: z.ZodError): StewardError {
  const details = error.issues.map((i) => ({
    path: [where, ...i.path.map(String)].join('.'),
    message: i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.map((k) => `\`${k}\``).join(', ')}` : i.message.toLowerCase(),
  }));
  const first = details[0];
  const message = first === undefined ? `invalid ${where}` : `${first.path}: ${first.message}${details.length > 1 ? ` (and ${details.length - 1} more)` : ''}`;
  return new StewardError('STEWARD_E_VALIDATION', message, { details });
}
