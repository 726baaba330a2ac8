/**
 * Access experiments (src/experiments): templates, the workspace's experiment
 * policy, runs and their approvals.
 *
 * A running experiment's row is its own durable timer: `ends_at` is the due
 * time, and the access scheduler's loop claims due rows with
 * `FOR UPDATE SKIP LOCKED` and ends them in one transaction with the removal
 * of their guardrail, so a restart or a second process neither loses nor
 * repeats an end.
 */
export const EXPERIMENTS = `
CREATE TABLE steward.experiment_policy (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  document jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object'),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text NOT NULL
);

CREATE TABLE steward.experiment_templates (
  name text PRIMARY KEY,
  document jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object'),
  created_at timestamptz NOT NULL,
  created_by text NOT NULL
);

CREATE TABLE steward.experiments (
  id text PRIMARY KEY,
  template text NOT NULL,
  spec jsonb NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
  excluded jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(excluded) = 'array'),
  status text NOT NULL CHECK (status IN ('pending', 'running', 'ended', 'stopped', 'rejected')),
  duration_seconds integer NOT NULL CHECK (duration_seconds > 0),
  started_by text NOT NULL,
  created_at timestamptz NOT NULL,
  started_at timestamptz,
  ends_at timestamptz,
  ended_at timestamptz,
  end_reason text,
  approvals jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(approvals) = 'array'),
  CHECK (status <> 'running' OR (started_at IS NOT NULL AND ends_at IS NOT NULL))
);
CREATE INDEX experiments_due ON steward.experiments (ends_at) WHERE status = 'running';
CREATE INDEX experiments_template ON steward.experiments (template, created_at);
`;
