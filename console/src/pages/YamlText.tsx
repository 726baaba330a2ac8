/** The policy's YAML in CodeMirror (YAML highlighting, undo), with plan problems at their line and column. */
import { useMemo, type ReactNode } from 'react';
import { yaml } from '@codemirror/lang-yaml';
import { CodeEditor, type Problem } from './CodeEditor.js';

export default function YamlText({ value, onChange, problems }: { value: string; onChange: (text: string) => void; problems: readonly Problem[] }): ReactNode {
  const language = useMemo(() => yaml(), []);
  return <CodeEditor value={value} onChange={onChange} label="Policy (policy.yaml)" testId="policy-yaml" language={language} problems={problems} />;
}
