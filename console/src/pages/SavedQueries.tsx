/**
 * Saved queries: save the editor's SQL (`${name}` placeholders become
 * parameters, bound as values at run time, never spliced), run one with its
 * parameter inputs, share it with a group, delete it.
 */
import { useState, type FormEvent, type ReactNode } from 'react';
import { api, seg } from '../api.js';
import { ErrorNote, useLoad } from '../ui.js';

export interface SavedQuery {
  readonly id: string;
  readonly owner: string;
  readonly name: string;
  readonly sql: string;
  readonly parameters: readonly string[];
  readonly sharedWith: readonly string[];
}

export function SavedQueries({ sql, onRun, onLoad }: { sql: string; onRun: (q: SavedQuery, params: Record<string, string>) => void; onLoad: (sql: string) => void }): ReactNode {
  const saved = useLoad((signal) => api<{ queries: SavedQuery[] }>('GET', '/v1/saved-queries', undefined, signal), []);
  const [name, setName] = useState('');
  const [error, setError] = useState<unknown>(null);
  const list = saved.data?.queries ?? [];
  const save = async (e: FormEvent): Promise<void> => {
    e.preventDefault();
    setError(null);
    try {
      await api('POST', '/v1/saved-queries', { name: name.trim(), sql });
      setName('');
      saved.reload();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section aria-labelledby="saved-title">
      <h3 id="saved-title">Saved queries</h3>
      <form className="inline-form" onSubmit={(e) => void save(e)}>
        <label htmlFor="save-name">Save the SQL above as</label>
        <input id="save-name" value={name} onChange={(e) => setName(e.target.value)} required size={24} />
        <button type="submit" className="secondary">
          Save
        </button>
        <span className="muted">
          <code>{'${name}'}</code> placeholders become parameters
        </span>
      </form>
      <ErrorNote error={saved.error ?? error} />
      <ul className="history" aria-label="Saved queries">
        {list.map((q) => (
          <SavedItem key={q.id} query={q} onRun={onRun} onLoad={onLoad} onChanged={saved.reload} />
        ))}
      </ul>
    </section>
  );
}

function SavedItem({ query, onRun, onLoad, onChanged }: { query: SavedQuery; onRun: (q: SavedQuery, p: Record<string, string>) => void; onLoad: (sql: string) => void; onChanged: () => void }): ReactNode {
  const [params, setParams] = useState<Record<string, string>>({});
  const [group, setGroup] = useState('');
  const [error, setError] = useState<unknown>(null);
  const share = (e: FormEvent): void => {
    e.preventDefault();
    setError(null);
    api('PUT', `/v1/saved-queries/${seg(query.id)}/shares/${seg(group.trim())}`)
      .then(() => {
        setGroup('');
        onChanged();
      })
      .catch(setError);
  };
  return (
    <li data-testid={`saved-${query.name}`}>
      <strong>{query.name}</strong> <span className="muted">by {query.owner}</span>
      {query.sharedWith.length > 0 && <span className="muted"> · shared with {query.sharedWith.join(', ')}</span>}
      <div>
        <code>{query.sql}</code>
      </div>
      <form
        className="inline-form"
        aria-label={`Run ${query.name}`}
        onSubmit={(e) => {
          e.preventDefault();
          onRun(query, params);
        }}
      >
        {query.parameters.map((p) => (
          <span key={p}>
            <label htmlFor={`p-${query.id}-${p}`}>{p}</label>{' '}
            <input id={`p-${query.id}-${p}`} value={params[p] ?? ''} onChange={(e) => setParams({ ...params, [p]: e.target.value })} size={14} />
          </span>
        ))}
        <button type="submit">Run saved</button>
        <button type="button" className="secondary" onClick={() => onLoad(query.sql)}>
          Open in editor
        </button>
      </form>
      <form className="inline-form" aria-label={`Share ${query.name}`} onSubmit={share}>
        <label htmlFor={`share-${query.id}`}>Share with group</label>
        <input id={`share-${query.id}`} value={group} onChange={(e) => setGroup(e.target.value)} size={14} required />
        <button type="submit" className="secondary">
          Share
        </button>
      </form>
      <ErrorNote error={error} />
    </li>
  );
}
