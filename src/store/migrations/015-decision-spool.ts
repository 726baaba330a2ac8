/**
 * Decisions made without opening the store (`steward authorize` answered from
 * the world cache, src/cli/cached-decisions.ts) are spooled to files and
 * ingested at the next open. `spool_key` names the file a row came from, so a
 * file ingested again after a crash (between the commit and its deletion) is
 * not logged twice. Other rows leave it null and the partial index untouched.
 */
export const DECISION_SPOOL = `
ALTER TABLE steward.decision_log ADD COLUMN spool_key text;
CREATE UNIQUE INDEX decision_log_spool_key ON steward.decision_log (spool_key) WHERE spool_key IS NOT NULL;
`;
