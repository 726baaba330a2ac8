/** CodeMirror 6 with SQL highlighting; Ctrl/Cmd-Enter runs. Loaded with the query page only. */
import { useEffect, useRef, type ReactNode } from 'react';
// The `codemirror` package in our dependencies is the 5.x line under a 6.65 version number, so the
// editor is assembled from the @codemirror/* 6.x modules lang-sql brings (no @codemirror/commands: no undo history).
import { EditorView, drawSelection, highlightActiveLine, keymap, lineNumbers, type ViewUpdate } from '@codemirror/view';
import { bracketMatching, HighlightStyle, syntaxHighlighting } from '@codemirror/language';
import { tags as t } from '@lezer/highlight';
import { autocompletion } from '@codemirror/autocomplete';
import { sql, StandardSQL } from '@codemirror/lang-sql';

const THEME = EditorView.theme({
  '&': { minHeight: '8rem', fontSize: '13px', backgroundColor: '#fff' },
  '.cm-scroller': { fontFamily: "ui-monospace, 'DejaVu Sans Mono', monospace", minHeight: '8rem' },
  '&.cm-focused': { outline: '2px solid #f0a000' },
});

/** Colours with at least 4.5:1 contrast on white and on the active-line tint (axe-core checks them). */
const HIGHLIGHT = HighlightStyle.define([
  { tag: t.keyword, color: '#6f2da8', fontWeight: '600' },
  { tag: [t.string, t.special(t.string)], color: '#a31515' },
  { tag: [t.number, t.bool, t.null], color: '#0f5f2a' },
  { tag: [t.lineComment, t.blockComment], color: '#545d66', fontStyle: 'italic' },
  { tag: [t.typeName, t.standard(t.name)], color: '#0b4f8a' },
  { tag: [t.operator, t.punctuation, t.bracket], color: '#1b1f24' },
]);

export interface SqlEditorProps {
  readonly value: string;
  readonly onChange: (sql: string) => void;
  readonly onRun: () => void;
  readonly schema: Record<string, readonly string[]>;
}

export function SqlEditor({ value, onChange, onRun, schema }: SqlEditorProps): ReactNode {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const handlers = useRef({ onChange, onRun });
  handlers.current = { onChange, onRun };

  useEffect(() => {
    if (host.current === null) return;
    // In a shadow root CodeMirror's styles go to a constructed style sheet instead of a
    // <style> element, which the CSP (style-src 'self', no 'unsafe-inline') would refuse.
    const shadow = host.current.shadowRoot ?? host.current.attachShadow({ mode: 'open' });
    shadow.replaceChildren();
    const parent = document.createElement('div');
    shadow.appendChild(parent);
    const v = new EditorView({
      doc: value,
      root: shadow,
      parent,
      extensions: [
        THEME,
        keymap.of([{ key: 'Mod-Enter', run: () => (handlers.current.onRun(), true) }]),
        lineNumbers(),
        drawSelection(),
        highlightActiveLine(),
        bracketMatching(),
        autocompletion(),
        syntaxHighlighting(HIGHLIGHT),
        sql({ dialect: StandardSQL, schema: { ...schema } as Record<string, string[]> }),
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({ 'aria-label': 'SQL', 'data-testid': 'sql' }),
        EditorView.updateListener.of((u: ViewUpdate) => {
          if (u.docChanged) handlers.current.onChange(u.state.doc.toString());
        }),
      ],
    });
    view.current = v;
    return () => v.destroy();
    // The schema changes rarely; a new one re-creates the editor with the current text.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [schema]);

  // Text set from outside (history, a table name) replaces the document.
  useEffect(() => {
    const v = view.current;
    if (v !== null && v.state.doc.toString() !== value) v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value } });
  }, [value]);

  return <div className="editor" ref={host} />;
}
