/** The timeline API's buckets (GET /v1/audit/timeline) reshaped for a chart and a table: one row of counts per source. */

export interface TimelineBucket {
  readonly time: string;
  readonly source: string;
  readonly allowed: number;
  readonly denied: number;
}

export interface TimelineSeries {
  readonly name: string;
  /** Counts per entry of `times`, 0 where the source had no event. */
  readonly allowed: number[];
  readonly denied: number[];
}

/** The API's bucket names (src/audit/timeline.ts BUCKETS) in milliseconds. */
const BUCKET_MS: Readonly<Record<string, number>> = { '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '6h': 21_600_000, '1d': 86_400_000 };

export interface TimelineWindow {
  readonly from: string;
  readonly to: string;
  readonly bucket: string;
}

/** Every bucket start of the window (aligned as the server aligns them), so quiet periods show as gaps, not as nothing. */
export function bucketStarts(w: TimelineWindow): string[] {
  const size = BUCKET_MS[w.bucket];
  if (size === undefined) return [];
  const out: string[] = [];
  for (let t = Math.floor(Date.parse(w.from) / size) * size; t < Date.parse(w.to) && out.length < 2000; t += size) out.push(new Date(t).toISOString());
  return out;
}

export function seriesOf(buckets: readonly TimelineBucket[], axis: readonly string[] = []): { times: string[]; sources: TimelineSeries[] } {
  const times = [...new Set([...axis, ...buckets.map((b) => b.time)])].sort();
  const index = new Map(times.map((t, i) => [t, i]));
  const bySource = new Map<string, TimelineSeries>();
  for (const b of buckets) {
    let s = bySource.get(b.source);
    if (s === undefined) {
      s = { name: b.source, allowed: times.map(() => 0), denied: times.map(() => 0) };
      bySource.set(b.source, s);
    }
    const i = index.get(b.time) ?? 0;
    s.allowed[i] = (s.allowed[i] ?? 0) + b.allowed;
    s.denied[i] = (s.denied[i] ?? 0) + b.denied;
  }
  return { times, sources: [...bySource.values()].sort((a, b) => a.name.localeCompare(b.name)) };
}
