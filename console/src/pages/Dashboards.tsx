/**
 * Dashboards (docs/embedding.md) for provisioned users: the ones whose every
 * dataset table the user may read, each run as the user through the gateway,
 * so its rows come from the user's own grants, data filters and guardrails,
 * never from the dashboard's `runAs`. A dataset the user may not read shows
 * its refusal in place of its visuals. Everything is rendered as text.
 */
import { lazy, Suspense, useState, type ReactNode } from 'react';
import { api, seg, type Session } from '../api.js';
import { navigate, useLocation } from '../router.js';
import { ColumnHeads, ErrorNote, useLoad } from '../ui.js';
import { choicesOf, rowsOf, sumBy, total, type DatasetData, type FilterChoice, type ViewFilter } from './dashboard-data.js';

const DashboardChart = lazy(() => import('./DashboardChart.js'));

interface Listed {
  readonly id: string;
  readonly title: string;
  readonly description?: string;
}

interface Visual {
  readonly id: string;
  readonly title?: string;
  readonly type: 'kpi' | 'bar' | 'line' | 'table';
  readonly dataset: string;
  readonly x?: string;
  readonly y?: string;
  readonly columns?: readonly string[];
}

type Data = DatasetData | { readonly error: { readonly code: string; readonly message: string } };

interface View {
  readonly dashboard: { readonly id: string; readonly title: string; readonly description?: string; readonly visuals: readonly Visual[]; readonly filters: readonly ViewFilter[] };
  readonly data: Readonly<Record<string, Data>>;
}

const isError = (d: Data | undefined): d is Extract<Data, { error: unknown }> => d !== undefined && 'error' in d;

export default function Dashboards(_props: { session: Session }): ReactNode {
  const { search } = useLocation();
  const list = useLoad((signal) => api<{ dashboards: Listed[] }>('GET', '/v1/dashboards', undefined, signal), []);
  const chosen = search.get('id') ?? list.data?.dashboards[0]?.id ?? null;
  return (
    <section aria-labelledby="dashboards-title">
      <h1 id="dashboards-title">Dashboards</h1>
      <p className="muted">Dashboards whose tables you may read, with your own rows and columns.</p>
      <ErrorNote error={list.error} />
      {list.data !== undefined && list.data.dashboards.length === 0 && <p>No dashboard reads only tables you may read.</p>}
      {list.data !== undefined && list.data.dashboards.length > 0 && (
        <label>
          Dashboard{' '}
          <select value={chosen ?? ''} onChange={(e) => navigate(`/dashboards?id=${encodeURIComponent(e.target.value)}`)}>
            {list.data.dashboards.map((d) => (
              <option key={d.id} value={d.id}>
                {d.title}
              </option>
            ))}
          </select>
        </label>
      )}
      {chosen !== null && <DashboardView id={chosen} />}
    </section>
  );
}

function DashboardView({ id }: { id: string }): ReactNode {
  const view = useLoad((signal) => api<View>('GET', `/v1/dashboards/${seg(id)}/view`, undefined, signal), [id]);
  const [choices, setChoices] = useState<Record<string, FilterChoice>>({});
  if (view.error !== null && view.error !== undefined) return <ErrorNote error={view.error} />;
  if (view.data === undefined) return <p aria-busy="true">Loading…</p>;
  const { dashboard, data } = view.data;
  const readable = Object.fromEntries(Object.entries(data).flatMap(([k, d]) => (isError(d) ? [] : [[k, d]]))) as Record<string, DatasetData>;
  const set = (fid: string, c: FilterChoice): void => setChoices((prev) => ({ ...prev, [fid]: c }));
  return (
    <div data-testid="dashboard" data-dashboard={dashboard.id}>
      <h2>{dashboard.title}</h2>
      {dashboard.description !== undefined && <p>{dashboard.description}</p>}
      <div className="filters">
        {dashboard.filters.map((f) => (
          <FilterInput key={f.id} filter={f} options={choicesOf(readable, f.column)} onChange={(c) => set(f.id, c)} />
        ))}
      </div>
      <div className="dashboard-grid">
        {dashboard.visuals.map((v) => (
          <VisualCard key={v.id} visual={v} data={data[v.dataset]} filters={dashboard.filters} choices={choices} />
        ))}
      </div>
    </div>
  );
}

function FilterInput({ filter: f, options, onChange }: { filter: ViewFilter; options: readonly string[]; onChange: (c: FilterChoice) => void }): ReactNode {
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const label = f.title ?? f.id;
  if (f.type === 'range') {
    return (
      <fieldset className="inline">
        <legend>{label}</legend>
        <input aria-label={`${label} from`} placeholder="from" value={from} onChange={(e) => (setFrom(e.target.value), onChange({ from: e.target.value, to }))} />
        <input aria-label={`${label} to`} placeholder="to" value={to} onChange={(e) => (setTo(e.target.value), onChange({ from, to: e.target.value }))} />
      </fieldset>
    );
  }
  return (
    <label>
      {label}{' '}
      <select onChange={(e) => onChange(e.target.value)}>
        <option value="">all</option>
        {options.map((o) => (
          <option key={o}>{o}</option>
        ))}
      </select>
    </label>
  );
}

function VisualCard({ visual: v, data, filters, choices }: { visual: Visual; data: Data | undefined; filters: readonly ViewFilter[]; choices: Readonly<Record<string, FilterChoice>> }): ReactNode {
  const title = v.title ?? v.id;
  if (data === undefined) return null;
  if (isError(data)) {
    return (
      <article className="card" data-visual={v.id}>
        <h3>{title}</h3>
        <p role="note" className="refused">
          Not shown: {data.error.message}
        </p>
      </article>
    );
  }
  const rows = rowsOf(data, filters, choices);
  return (
    <article className="card" data-visual={v.id}>
      <h3>{title}</h3>
      {v.type === 'kpi' && <p className="kpi">{total(rows, v.y ?? '').toLocaleString('en-US', { maximumFractionDigits: 0 })}</p>}
      {(v.type === 'bar' || v.type === 'line') && <Series type={v.type} series={sumBy(rows, v.x ?? '', v.y ?? '')} title={title} x={v.x ?? ''} y={v.y ?? ''} />}
      {v.type === 'table' && <RowsTable columns={v.columns ?? data.columns} rows={rows} />}
      {data.truncated && <p className="muted">Only the first {data.rows.length} rows of the dataset are shown.</p>}
    </article>
  );
}

function Series({ type, series, title, x, y }: { type: 'bar' | 'line'; series: [string, number][]; title: string; x: string; y: string }): ReactNode {
  return (
    <>
      <Suspense fallback={<p aria-busy="true">Drawing…</p>}>
        <DashboardChart type={type} series={series} label={title} />
      </Suspense>
      <table className="sr-only">
        <caption>{title}</caption>
        <ColumnHeads names={[x, y]} />
        <tbody>
          {series.map(([k, n]) => (
            <tr key={k}>
              <th scope="row">{k}</th>
              <td>{n}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function RowsTable({ columns, rows }: { columns: readonly string[]; rows: readonly Readonly<Record<string, unknown>>[] }): ReactNode {
  return (
    <table className="grid">
      <ColumnHeads names={columns} />
      <tbody>
        {rows.slice(0, 200).map((r, i) => (
          <tr key={i}>
            {columns.map((c) => (
              <td key={c}>{r[c] === null || r[c] === undefined ? '' : String(r[c])}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
