/**
 * The console's one CodeMirror 6 editor, for SQL and for the policy YAML:
 * undo history with the standard key bindings (Ctrl/Cmd-Z undoes, Ctrl-Y or
 * Cmd-Shift-Z redoes), line numbers, highlighting, an optional run key (Ctrl/Cmd-Enter),
 * and problems shown at their line and column as diagnostics: the line is
 * marked, the message is written at its end, and a list under the editor
 * moves the cursor to each.
 *
 * Mounted in a shadow root: CodeMirror's styles then go to a constructed
 * style sheet instead of a <style> element, which the CSP (style-src 'self',
 * no 'unsafe-inline') would refuse.
 */
import { useEffect, useRef, type ReactNode } from 'react';
// The `codemirror` package in our dependencies is the 5.x line under a 6.x version number, so the
// editor is assembled from the @codemirror/* 6.x modules.
import { Decoration, EditorView, WidgetType, drawSelection, highlightActiveLine, keymap, lineNumbers, type DecorationSet, type KeyBinding, type ViewUpdate } from '@codemirror/view';
import { Annotation, Compartment, StateEffect, StateField, Transaction, type Extension, type Text } from '@codemirror/state';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { bracketMatching, HighlightStyle, syntaxHighlighting } from '@codemirror/language';
import { tags as t } from '@lezer/highlight';

/** A problem at a 1-based line and column, as the API's `file:line:column` errors name them. */
export interface Problem {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

const THEME = EditorView.theme({
  '&': { minHeight: '8rem', fontSize: '13px', backgroundColor: '#fff' },
  '.cm-scroller': { fontFamily: "ui-monospace, 'DejaVu Sans Mono', monospace", minHeight: '8rem' },
  '&.cm-focused': { outline: '2px solid #f0a000' },
  '.cm-problem-line': { backgroundColor: '#fdecee' },
  '.cm-problem-at': { textDecoration: 'underline wavy #b00020' },
  '.cm-problem-text': { color: '#8a0018', marginLeft: '1.5em', fontStyle: 'italic' },
});

/** Colours with at least 4.5:1 contrast on white and on the active-line tint (axe-core checks them). */
const HIGHLIGHT = HighlightStyle.define([
  { tag: t.keyword, color: '#6f2da8', fontWeight: '600' },
  { tag: [t.string, t.special(t.string)], color: '#a31515' },
  { tag: [t.number, t.bool, t.null], color: '#0f5f2a' },
  { tag: [t.lineComment, t.blockComment], color: '#545d66', fontStyle: 'italic' },
  { tag: [t.typeName, t.standard(t.name)], color: '#0b4f8a' },
  { tag: [t.propertyName, t.definition(t.propertyName)], color: '#0b4f8a' },
  { tag: [t.operator, t.punctuation, t.bracket], color: '#1b1f24' },
]);

class ProblemText extends WidgetType {
  constructor(readonly message: string) {
    super();
  }
  override eq(other: ProblemText): boolean {
    return other.message === this.message;
  }
  toDOM(): HTMLElement {
    const span = document.createElement('span');
    span.className = 'cm-problem-text';
    span.textContent = `← ${this.message}`;
    return span;
  }
}

const setProblems = StateEffect.define<readonly Problem[]>();

/**
 * Marks text set from outside (a reload, a history entry): it is not an edit,
 * so it is not reported back as one (which would, say, hide the "applied"
 * note the reload follows) and is not undoable (undo must not empty the editor).
 */
const external = Annotation.define<true>();

/** Where a problem sits in the document, clamped to it (a stale problem must not throw). */
function positionOf(doc: Text, p: Problem): { line: number; from: number; to: number } {
  const line = doc.line(Math.min(Math.max(1, p.line), doc.lines));
  const from = Math.min(line.from + Math.max(0, p.column - 1), line.to);
  return { line: line.number, from, to: Math.min(from + 1, line.to) };
}

function decorate(doc: Text, problems: readonly Problem[]): DecorationSet {
  const ranges = problems.flatMap((p) => {
    const at = positionOf(doc, p);
    const line = doc.line(at.line);
    return [
      Decoration.line({ class: 'cm-problem-line' }).range(line.from),
      ...(at.to > at.from ? [Decoration.mark({ class: 'cm-problem-at' }).range(at.from, at.to)] : []),
      Decoration.widget({ widget: new ProblemText(p.message), side: 1 }).range(line.to),
    ];
  });
  return Decoration.set(ranges, true);
}

/** Problems are shown until the next edit: after it they may point at the wrong place. */
const problemField = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(value, tr) {
    for (const e of tr.effects) if (e.is(setProblems)) return decorate(tr.state.doc, e.value);
    return tr.docChanged ? Decoration.none : value;
  },
  provide: (f) => EditorView.decorations.from(f),
});

export interface CodeEditorProps {
  readonly value: string;
  readonly onChange: (text: string) => void;
  /** The accessible name of the text area (and its test id when `testId` is not given). */
  readonly label: string;
  readonly testId?: string;
  /** The language: `sql(...)`, `yaml()`, plus anything else the caller wants (completion). */
  readonly language: Extension;
  /** Ctrl/Cmd-Enter. */
  readonly onRun?: () => void;
  readonly problems?: readonly Problem[];
}

export function CodeEditor({ value, onChange, label, testId, language, onRun, problems }: CodeEditorProps): ReactNode {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const handlers = useRef({ onChange, onRun });
  handlers.current = { onChange, onRun };
  const languageRef = useRef(language);
  languageRef.current = language;
  // A new language (the SQL completion schema arrives after the editor) is swapped in place: the
  // editor keeps its focus, text and undo history, so typing while the schema loads is never lost.
  const languageSlot = useRef(new Compartment());

  useEffect(() => {
    if (host.current === null) return;
    const shadow = host.current.shadowRoot ?? host.current.attachShadow({ mode: 'open' });
    shadow.replaceChildren();
    const parent = document.createElement('div');
    shadow.appendChild(parent);
    const run: KeyBinding[] = [{ key: 'Mod-Enter', run: () => (handlers.current.onRun === undefined ? false : (handlers.current.onRun(), true)) }];
    const v = new EditorView({
      doc: value,
      root: shadow,
      parent,
      extensions: [
        THEME,
        history(),
        // First match wins: the run key before defaultKeymap's Mod-Enter (insert a blank line).
        keymap.of([...run, ...historyKeymap, ...defaultKeymap]),
        lineNumbers(),
        drawSelection(),
        highlightActiveLine(),
        bracketMatching(),
        syntaxHighlighting(HIGHLIGHT),
        languageSlot.current.of(languageRef.current),
        problemField,
        EditorView.lineWrapping,
        EditorView.contentAttributes.of({ 'aria-label': label, 'data-testid': testId ?? label }),
        EditorView.updateListener.of((u: ViewUpdate) => {
          if (u.docChanged && !u.transactions.every((tr) => tr.annotation(external) === true)) handlers.current.onChange(u.state.doc.toString());
        }),
      ],
    });
    view.current = v;
    return () => v.destroy();
    // The editor is built once; text, language and problems flow in through the effects below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [label, testId]);

  useEffect(() => {
    view.current?.dispatch({ effects: languageSlot.current.reconfigure(language) });
  }, [language]);

  // Text set from outside (history, a table name, a reload) replaces the document.
  useEffect(() => {
    const v = view.current;
    if (v !== null && v.state.doc.toString() !== value) {
      v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: value }, annotations: [external.of(true), Transaction.addToHistory.of(false)] });
    }
  }, [value]);

  useEffect(() => {
    view.current?.dispatch({ effects: setProblems.of(problems ?? []) });
  }, [problems]);

  const goTo = (p: Problem): void => {
    const v = view.current;
    if (v === null) return;
    const at = positionOf(v.state.doc, p);
    v.dispatch({ selection: { anchor: at.from }, scrollIntoView: true });
    v.focus();
  };

  return (
    <>
      <div className="editor" ref={host} />
      {problems !== undefined && problems.length > 0 && (
        <ul className="problems" aria-label={`Problems in ${label}`}>
          {problems.map((p, i) => (
            <li key={i}>
              <button type="button" className="link" onClick={() => goTo(p)}>
                Line {p.line}, column {p.column}
              </button>
              : {p.message}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
