/**
 * A flush reads its batch's rows back from the decision log by batch number
 * (`audit_batch = $1`, in id order, a slice at a time). With no index on the
 * batch number, the first slice walked the primary key from the first row
 * ever logged: ~75 ms on the server's event loop after 150k decisions, once
 * per 5 s flush, and the slowest 1% of requests under a steady load. Rows get
 * a batch number only when a flush claims them, so new rows never touch this
 * partial index.
 */
export const AUDIT_BATCH_INDEX = `
CREATE INDEX decision_log_audit_batch ON steward.decision_log (audit_batch, id) WHERE audit_batch IS NOT NULL;
`;
