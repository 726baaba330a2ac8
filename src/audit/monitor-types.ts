/**
 * What a monitor is made of and what it sends: severities, the trigger
 * condition, the action (webhook, PagerDuty, email) and the notification.
 * Shared by the monitor service and the delivery queue, which both need them
 * and must not import each other.
 */
import { z } from 'zod';
import type { Row } from '../lake/duckdb.js';

export const MONITOR_SEVERITIES = ['critical', 'error', 'warning', 'info'] as const;
export type MonitorSeverity = (typeof MONITOR_SEVERITIES)[number];

const Url = z.url().max(2048).refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL');

export const ConditionSchema = z
  .object({
    /** Compare this column of any row; without it, the number of rows is compared. */
    column: z.string().min(1).max(128).optional(),
    op: z.enum(['>', '>=', '<', '<=', '==', '!=']),
    value: z.number(),
  })
  .strict();
export type MonitorCondition = z.infer<typeof ConditionSchema>;

export const ActionSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('webhook'), url: Url, headers: z.record(z.string().max(128), z.string().max(1024)).optional() }).strict(),
  z.object({ kind: z.literal('pagerduty'), url: Url.default('https://events.pagerduty.com/v2/enqueue'), routingKey: z.string().min(1).max(128) }).strict(),
  z
    .object({
      kind: z.literal('email'),
      to: z.array(z.email().max(320)).min(1).max(50),
      from: z.email().max(320),
      smtp: z.object({ host: z.string().min(1).max(255), port: z.number().int().min(1).max(65535), secure: z.boolean().default(false) }).strict(),
    })
    .strict(),
]);
export type MonitorAction = z.infer<typeof ActionSchema>;

export interface Notification {
  readonly monitor: string;
  readonly severity: MonitorSeverity;
  readonly summary: string;
  readonly rows: readonly Row[];
  readonly at: string;
  readonly test: boolean;
  /** The same for every attempt of one delivery, so a receiver can drop a resend. */
  readonly key?: string;
}
