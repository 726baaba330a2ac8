/**
 * A results grid virtualised by hand: only the rows in view (plus a margin)
 * are in the DOM, so 100k rows scroll as smoothly as 100. Cells are text.
 */
import { useMemo, useState, type ReactNode } from 'react';
import { cellText } from './results-text.js';

const ROW_HEIGHT = 26;
const VIEWPORT_ROWS = 14;
const OVERSCAN = 8;

export interface ResultSet {
  readonly columns: readonly { name: string; type: string }[];
  readonly rows: readonly Record<string, unknown>[];
}


export function ResultsGrid({ result }: { result: ResultSet }): ReactNode {
  const [top, setTop] = useState(0);
  const template = useMemo(() => result.columns.map(() => 'minmax(8rem, 1fr)').join(' '), [result.columns]);
  const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(result.rows.length, Math.ceil(top / ROW_HEIGHT) + VIEWPORT_ROWS + OVERSCAN);
  const visible = result.rows.slice(first, last);
  const width = `max(100%, ${result.columns.length * 9}rem)`;
  return (
    <div className="results">
      <div
        className="results-viewport"
        role="table"
        tabIndex={0}
        aria-label="Query results"
        aria-rowcount={result.rows.length + 1}
        aria-colcount={result.columns.length}
        onScroll={(e) => setTop(e.currentTarget.scrollTop)}
      >
        <div role="rowgroup">
          <div className="results-head" role="row" aria-rowindex={1} style={{ gridTemplateColumns: template, width }}>
            {result.columns.map((c) => (
              <div key={c.name} role="columnheader" title={c.type}>
                {c.name}
              </div>
            ))}
          </div>
        </div>
        <div className="results-body" role="rowgroup" style={{ height: result.rows.length * ROW_HEIGHT, width }}>
          {visible.map((row, i) => {
            const index = first + i;
            return (
              <div key={index} className="results-row" role="row" aria-rowindex={index + 2} style={{ transform: `translateY(${index * ROW_HEIGHT}px)`, gridTemplateColumns: template, height: ROW_HEIGHT }}>
                {result.columns.map((c) => {
                  const v = row[c.name];
                  return (
                    <div key={c.name} role="cell" className={v === null || v === undefined ? 'results-cell null' : 'results-cell'}>
                      {cellText(v)}
                    </div>
                  );
                })}
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
