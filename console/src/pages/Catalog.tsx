/**
 * Catalog: catalogs → databases → tables → columns with effective tags and
 * where each comes from; search by name and tag expression; per table, who
 * can access it and why, with the data filters. Admins tag columns here and
 * see at once who lost (or gained) access to the column.
 */
import { useMemo, useState, type FormEvent, type ReactNode } from 'react';
import { api, seg, type Session } from '../api.js';
import { navigate, useLocation } from '../router.js';
import { ColumnHeads, ErrorNote, Tag, useLoad } from '../ui.js';
import type { AccessAnswer, CatalogTable, EffectiveTagsAnswer, SearchAnswer } from '../types.js';

export default function Catalog({ session }: { session: Session }): ReactNode {
  const { search } = useLocation();
  const selected = search.get('table');
  const tables = useLoad((signal) => api<{ tables: CatalogTable[] }>('GET', '/v1/tables', undefined, signal), []);
  return (
    <div className="columns">
      <section className="sidebar" aria-labelledby="catalog-tree">
        <h1 id="catalog-tree">Catalog</h1>
        <SearchBox />
        <ErrorNote error={tables.error} />
        {tables.data !== undefined && <Tree tables={tables.data.tables} selected={selected} />}
      </section>
      <section className="detail">
        {selected === null ? (
          <SearchResults />
        ) : (
          <TableDetail key={selected} name={selected} session={session} table={tables.data?.tables.find((t) => fullName(t) === selected)} />
        )}
      </section>
    </div>
  );
}

const fullName = (t: CatalogTable): string => `${t.catalog}.${t.database}.${t.name}`;

function open(table: string): void {
  navigate(`/catalog?table=${encodeURIComponent(table)}`);
}

function Tree({ tables, selected }: { tables: readonly CatalogTable[]; selected: string | null }): ReactNode {
  const grouped = useMemo(() => {
    const out = new Map<string, Map<string, CatalogTable[]>>();
    for (const t of tables) {
      const dbs = out.get(t.catalog) ?? new Map<string, CatalogTable[]>();
      out.set(t.catalog, dbs);
      dbs.set(t.database, [...(dbs.get(t.database) ?? []), t]);
    }
    return out;
  }, [tables]);
  if (tables.length === 0) return <p className="muted">No tables you may describe.</p>;
  return (
    <ul className="tree" aria-label="Catalogs, databases and tables">
      {[...grouped].map(([catalog, dbs]) => (
        <li key={catalog}>
          <span className="node catalog">{catalog}</span>
          <ul>
            {[...dbs].map(([db, ts]) => (
              <li key={db}>
                <span className="node database">{db}</span>
                <ul>
                  {ts.map((t) => (
                    <li key={t.name}>
                      <a
                        href={`/catalog?table=${encodeURIComponent(fullName(t))}`}
                        aria-current={selected === fullName(t) ? 'true' : undefined}
                        onClick={(e) => {
                          e.preventDefault();
                          open(fullName(t));
                        }}
                      >
                        {t.name}
                      </a>
                    </li>
                  ))}
                </ul>
              </li>
            ))}
          </ul>
        </li>
      ))}
    </ul>
  );
}

function SearchBox(): ReactNode {
  const { search } = useLocation();
  const [name, setName] = useState(search.get('name') ?? '');
  const [tags, setTags] = useState(search.get('tags') ?? '');
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (name.trim() !== '') q.set('name', name.trim());
    if (tags.trim() !== '') q.set('tags', tags.trim());
    navigate(`/catalog?${q.toString()}`);
  };
  return (
    <form className="search" role="search" onSubmit={submit}>
      <label htmlFor="search-name">Name contains</label>
      <input id="search-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="claims" />
      <label htmlFor="search-tags">Tag expression</label>
      <input id="search-tags" value={tags} onChange={(e) => setTags(e.target.value)} placeholder="pii=true AND domain=claims" spellCheck={false} />
      <button type="submit">Search</button>
    </form>
  );
}

function SearchResults(): ReactNode {
  const { search } = useLocation();
  const name = search.get('name') ?? '';
  const tags = search.get('tags') ?? '';
  const q = new URLSearchParams();
  if (name !== '') q.set('name', name);
  if (tags !== '') q.set('tags', tags);
  const result = useLoad((signal) => api<SearchAnswer>('GET', `/v1/catalog/search?${q.toString()}`, undefined, signal), [name, tags]);
  return (
    <>
      <h2>{name === '' && tags === '' ? 'Everything you may describe' : 'Search results'}</h2>
      <ErrorNote error={result.error} />
      {result.data !== undefined && (
        <table className="grid">
          <caption className="sr-only">Tables and columns found</caption>
          <ColumnHeads names={['Resource', 'Kind', 'Effective tags']} />
          <tbody>
            {result.data.results.map((h) => (
              <tr key={h.resource}>
                <td>
                  <a
                    href={`/catalog?table=${encodeURIComponent(tableOf(h.resource, h.level))}`}
                    onClick={(e) => {
                      e.preventDefault();
                      open(tableOf(h.resource, h.level));
                    }}
                  >
                    {h.resource}
                  </a>
                </td>
                <td>{h.level}</td>
                <td>
                  {Object.entries(h.tags).map(([k, v]) => (
                    <Tag key={k} k={k} v={v} />
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {result.data?.results.length === 0 && <p className="muted">Nothing matches.</p>}
    </>
  );
}

const tableOf = (resource: string, level: string): string => (level === 'column' ? resource.split('.').slice(0, 3).join('.') : resource);

interface ColumnTags {
  readonly column: string;
  readonly tags: EffectiveTagsAnswer['tags'];
}

function TableDetail({ name, table, session }: { name: string; table: CatalogTable | undefined; session: Session }): ReactNode {
  const admin = session.role === 'admin';
  const tags = useLoad(
    async (signal): Promise<{ table: EffectiveTagsAnswer['tags']; columns: ColumnTags[] }> => {
      if (table === undefined) return { table: [], columns: [] };
      if (admin) {
        const [own, ...cols] = await Promise.all([
          api<EffectiveTagsAnswer>('GET', `/v1/resources/${seg(name)}/tags`, undefined, signal),
          ...table.columns.map((c) => api<EffectiveTagsAnswer>('GET', `/v1/resources/${seg(`${name}.${c.name}`)}/tags`, undefined, signal)),
        ]);
        return { table: own?.tags ?? [], columns: table.columns.map((c, i) => ({ column: c.name, tags: cols[i]?.tags ?? [] })) };
      }
      // Users read the tags of what they may describe through search (values only, not their source).
      const found = await api<SearchAnswer>('GET', `/v1/catalog/search?name=${seg(name)}`, undefined, signal);
      const asTags = (t: Record<string, string>): EffectiveTagsAnswer['tags'] => Object.entries(t).map(([key, value]) => ({ key, value, source: '', inherited: false }));
      const byName = new Map(found.results.map((h) => [h.resource, h.tags]));
      return { table: asTags(byName.get(name) ?? {}), columns: table.columns.map((c) => ({ column: c.name, tags: asTags(byName.get(`${name}.${c.name}`) ?? {}) })) };
    },
    [name, table, admin],
  );
  const [changed, setChanged] = useState<ReactNode>(null);

  if (table === undefined) return <p className="muted">Loading {name}…</p>;
  return (
    <>
      <h2>{name}</h2>
      <p className="muted">
        Source: {String(table.source['kind'] ?? table.source['format'] ?? 'table')} · {table.columns.length} columns
      </p>
      <ErrorNote error={tags.error} />
      <h3>Table tags</h3>
      <p>{tags.data?.table.length === 0 ? <span className="muted">none</span> : tags.data?.table.map((t) => <TagWithSource key={t.key} tag={t} />)}</p>
      <h3>Columns</h3>
      <table className="grid" aria-label={`Columns of ${name}`}>
        <ColumnHeads names={['Column', 'Type', 'Effective tags']} />
        <tbody>
          {table.columns.map((c) => (
            <tr key={c.name}>
              <th scope="row">{c.name}</th>
              <td>
                <code>{c.type}</code>
              </td>
              <td>{tags.data?.columns.find((x) => x.column === c.name)?.tags.map((t) => <TagWithSource key={t.key} tag={t} />)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {admin && (
        <TagColumnForm
          table={name}
          columns={table.columns.map((c) => c.name)}
          onDone={(note) => {
            setChanged(note);
            tags.reload();
          }}
        />
      )}
      {changed}
      {admin ? <WhoCanAccess key={String(changed !== null)} resource={name} /> : <p className="muted">Who can access a table is shown to admins.</p>}
    </>
  );
}

function TagWithSource({ tag }: { tag: EffectiveTagsAnswer['tags'][number] }): ReactNode {
  return (
    <span className="tag-with-source">
      <Tag k={tag.key} v={tag.value} />
      {tag.source !== '' && <span className="source">{tag.inherited ? `from ${tag.source}` : 'own'}</span>}
    </span>
  );
}

async function selectHolders(resource: string): Promise<Set<string>> {
  const a = await api<AccessAnswer>('GET', `/v1/resources/${seg(resource)}/access?action=SELECT`);
  return new Set(a.holders.filter((h) => h.decision.decision === 'allow').map((h) => h.principal));
}

/** Assigns a tag to a column and reports whose SELECT on that column the change took away or gave. */
function TagColumnForm({ table, columns, onDone }: { table: string; columns: readonly string[]; onDone: (note: ReactNode) => void }): ReactNode {
  const [column, setColumn] = useState(columns[0] ?? '');
  const [key, setKey] = useState('pii');
  const [value, setValue] = useState('true');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const resource = `${table}.${column}`;
    try {
      const before = await selectHolders(resource);
      await api('PUT', `/v1/resources/${seg(resource)}/tags/${seg(key)}`, { value });
      const after = await selectHolders(resource);
      const lost = [...before].filter((p) => !after.has(p));
      const gained = [...after].filter((p) => !before.has(p));
      onDone(
        <div className="notice" role="status" data-testid="tag-impact">
          <p>
            Tagged <code>{resource}</code> with <code>{`${key}=${value}`}</code>.
          </p>
          <p>Lost SELECT on the column: {lost.length === 0 ? 'nobody' : lost.join(', ')}</p>
          <p>Gained SELECT on the column: {gained.length === 0 ? 'nobody' : gained.join(', ')}</p>
        </div>,
      );
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="inline-form" onSubmit={(e) => void submit(e)} aria-label="Tag a column">
      <h3>Tag a column</h3>
      <label htmlFor="tag-column">Column</label>
      <select id="tag-column" value={column} onChange={(e) => setColumn(e.target.value)}>
        {columns.map((c) => (
          <option key={c}>{c}</option>
        ))}
      </select>
      <label htmlFor="tag-key">Key</label>
      <input id="tag-key" value={key} onChange={(e) => setKey(e.target.value)} size={12} />
      <label htmlFor="tag-value">Value</label>
      <input id="tag-value" value={value} onChange={(e) => setValue(e.target.value)} size={12} />
      <button type="submit" disabled={busy}>
        Assign tag
      </button>
      <ErrorNote error={error} />
    </form>
  );
}

function WhoCanAccess({ resource }: { resource: string }): ReactNode {
  const access = useLoad((signal) => api<AccessAnswer>('GET', `/v1/resources/${seg(resource)}/access?action=SELECT`, undefined, signal), [resource]);
  return (
    <>
      <h3>Who can SELECT</h3>
      <ErrorNote error={access.error} />
      {access.data !== undefined && (
        <table className="grid" aria-label={`Who can select from ${resource}`}>
          <ColumnHeads names={['Principal', 'Columns', 'Rows (data filter)', 'Why']} />
          <tbody>
            {access.data.holders.map((h) => (
              <tr key={h.principal}>
                <th scope="row">{h.principal}</th>
                <td>{h.decision.columns === undefined ? 'all' : h.decision.columns.map((c) => c.name).join(', ')}</td>
                <td>
                  {h.decision.filters.length > 0 && <span className="muted">{h.decision.filters.join(', ')}: </span>}
                  {h.decision.rowFilter === null || h.decision.rowFilter === undefined ? 'all rows' : <code>{h.decision.rowFilter}</code>}
                </td>
                <td>
                  <ul className="reasons">
                    {h.decision.reasons.map((r, i) => (
                      <li key={i} className={`reason ${r.code.toLowerCase()}`}>
                        {r.message}
                      </li>
                    ))}
                  </ul>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {access.data?.holders.length === 0 && <p className="muted">Nobody.</p>}
    </>
  );
}
