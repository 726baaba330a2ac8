/**
 * "Dry run first, then submit exactly what was dry-run": the gate of the
 * access request form and of starting an experiment. The submit action is
 * offered only while the form still holds the input its dry run was made of;
 * any edit takes it away until the next dry run.
 */
import { useState, type FormEvent } from 'react';
import { api } from './api.js';

export interface DryRunGate<P, R> {
  /** The dry run of exactly the current input, or null. */
  readonly current: P | null;
  readonly error: unknown;
  /** The last successful submit's confirmation, or null. */
  readonly done: string | null;
  dryRun(e: FormEvent): Promise<void>;
  submit(): Promise<void>;
}

export function useDryRunGate<I, P, R>(opts: {
  readonly input: I;
  readonly dryRunPath: string;
  readonly submitPath: string;
  /** What to say once submitted; also where the page reacts (reload a list, clear a field). */
  readonly onSubmitted: (result: R) => string;
}): DryRunGate<P, R> {
  const [preview, setPreview] = useState<{ key: string; value: P } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const key = JSON.stringify(opts.input);
  return {
    current: preview !== null && preview.key === key ? preview.value : null,
    error,
    done,
    async dryRun(e) {
      e.preventDefault();
      setError(null);
      setDone(null);
      try {
        setPreview({ key, value: await api<P>('POST', opts.dryRunPath, opts.input) });
      } catch (err) {
        setPreview(null);
        setError(err);
      }
    },
    async submit() {
      setError(null);
      try {
        const result = await api<R>('POST', opts.submitPath, opts.input);
        setPreview(null);
        setDone(opts.onSubmitted(result));
      } catch (err) {
        setError(err);
      }
    },
  };
}
