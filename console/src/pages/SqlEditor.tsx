/** The SQL editor: CodeMirror with SQL highlighting and completion of table and column names; Ctrl/Cmd-Enter runs. Loaded with the query page only. */
import { useMemo, type ReactNode } from 'react';
import { autocompletion } from '@codemirror/autocomplete';
import { sql, StandardSQL } from '@codemirror/lang-sql';
import { CodeEditor } from './CodeEditor.js';

export interface SqlEditorProps {
  readonly value: string;
  readonly onChange: (sql: string) => void;
  readonly onRun: () => void;
  readonly schema: Record<string, readonly string[]>;
}

export function SqlEditor({ value, onChange, onRun, schema }: SqlEditorProps): ReactNode {
  const language = useMemo(() => [autocompletion(), sql({ dialect: StandardSQL, schema: { ...schema } as Record<string, string[]> })], [schema]);
  return <CodeEditor value={value} onChange={onChange} onRun={onRun} label="SQL" testId="sql" language={language} />;
}
